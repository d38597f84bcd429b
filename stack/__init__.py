"""Stack control: start and stop the services (Compose or local processes) and manage model versions."""
