"""Where the stack keeps live runtime state, apart from the committed defaults in serving/."""

# The state directory holds what `make promote|canary|rollback|retire` change at run time. Local mode and
# Compose both use it (Compose mounts it at CONTAINER_STATE_DIR), so git never sees a promotion.
STATE_DIR = "state"  # relative to the repository root; STATE_DIR overrides it
CONTAINER_STATE_DIR = "/state"
MODEL_CONFIG_FILE = "models.config"  # the live ModelServerConfig, seeded from DEFAULT_MODEL_CONFIG_FILE
ROUTING_FILE = "routing.json"  # canary share and stable history (contract/routing.py reads it)
DEFAULT_MODEL_CONFIG_FILE = "serving/models.config"  # committed default, never written at run time
