"""Field types and helpers every API model module shares."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, ValidationInfo, WithJsonSchema

# Timestamps stay the server's own strings (ISO 8601, UTC, `Z`); the document says what they are.
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]


def _has_text(value: str, info: ValidationInfo) -> str:
    if not value.strip():
        raise ValueError(f"{info.field_name} must contain text")
    return value


# What a request may say: text that is more than spaces.
Text = Annotated[str, AfterValidator(_has_text)]


def examples(*values: dict[str, Any], forbid_extra: bool = False) -> ConfigDict:
    config = ConfigDict(json_schema_extra={"examples": list(values)})
    if forbid_extra:
        config["extra"] = "forbid"
    return config
