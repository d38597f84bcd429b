"""A CustomResourceDefinition's openAPIV3Schema as plain JSON Schema, with Kubernetes' strictness.

Kubernetes reads a structural schema with extensions JSON Schema does not know; this maps them:
- `x-kubernetes-int-or-string: true`: an integer or a string;
- `nullable: true`: null is allowed too;
- an object with `properties` and no `x-kubernetes-preserve-unknown-fields: true` gets
  `additionalProperties: false`: the API server prunes (or, with strict field validation, rejects) a field
  the schema does not declare, so a misspelled field must fail here rather than vanish there;
- every other `x-kubernetes-*` key (list types, map types, CEL validations) is dropped: they constrain
  merges and admission, not the shape this checks.
OpenAPI 3.0's keywords are JSON Schema draft 4's (boolean exclusiveMinimum), so validate with Draft4Validator.
"""

from typing import Any


def crd_version_schema(crd: dict, version: str) -> dict:
    """The openAPIV3Schema of `version` in `crd`, converted (KeyError when the CRD has no such version)."""
    for item in crd["spec"]["versions"]:
        if item["name"] == version:
            return to_json_schema(item["schema"]["openAPIV3Schema"])
    raise KeyError(f"{crd['metadata']['name']} has no version {version}")


def to_json_schema(schema: Any) -> Any:
    """`schema` (an OpenAPI v3 structural schema node) as JSON Schema, recursively."""
    if isinstance(schema, list):
        return [to_json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {}
    for key, value in schema.items():
        if key.startswith("x-kubernetes-") or key == "nullable":
            continue
        if key in ("properties", "patternProperties", "definitions"):
            result[key] = {name: to_json_schema(child) for name, child in value.items()}
        elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            result[key] = to_json_schema(value)
        else:
            result[key] = value  # type, required, enum, format, pattern, minimum, default, description...
    if schema.get("x-kubernetes-int-or-string"):
        result.pop("type", None)
        result["type"] = ["integer", "string"]
    if schema.get("nullable") and "type" in result:
        kinds = result["type"] if isinstance(result["type"], list) else [result["type"]]
        result["type"] = [*kinds, "null"]
        if "enum" in result:
            result["enum"] = [*result["enum"], None]
    preserve = schema.get("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in schema and not preserve and "additionalProperties" not in schema:
        result["additionalProperties"] = False
    return result
