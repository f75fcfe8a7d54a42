"""Request and response models of the answer's edits, versions and annotations."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StrictInt

from app.api.model_types import Text, Timestamp, examples

SectionName = Annotated[
    str | StrictInt,
    Field(
        description="A section of the answer: its heading text, or its index (0 is the part before "
        "the first `## ` heading)."
    ),
]


class OutputEditRequest(BaseModel):
    model_config = examples(
        {"section": "Sources", "content": "- [1] `documents/renewable-energy.md`"}, forbid_extra=True
    )

    section: SectionName
    content: str = Field(max_length=200_000, description="The section's new markdown (its heading stays).")
    base_version: StrictInt | None = Field(
        None, ge=1, description="The version the edit was made on, if If-Match is not sent."
    )


class OutputPreviewRequest(BaseModel):
    model_config = examples(
        {"section": "Funding", "content": "- The fund holds 1.8 billion euro. [2]"}, forbid_extra=True
    )

    section: SectionName
    content: str = Field(max_length=200_000, description="The section's new markdown.")


class OutputPreviewResponse(BaseModel):
    model_config = examples(
        {"run_id": "20261122_101500_1a2b3c4d", "html": "<h1>What is funded?</h1>", "uncited_sentences": []}
    )

    run_id: str = Field(description="The run's id.")
    html: str = Field(description="The whole answer with the section replaced, as HTML.")
    uncited_sentences: list[str] = Field(description="Sentences of the new text that cite no evidence.")


class AnswerSection(BaseModel):
    index: int = Field(description="Its index: 0 is the part before the first `## ` heading.")
    heading: str = Field(description="Its heading (section 0: the answer's title).")
    content: str = Field(description="Its markdown, heading aside.")


class AnswerVersionsInfo(BaseModel):
    version: int = Field(description="The latest version (1: the pipeline's answer, unedited).")
    has_user_edits: bool = Field(description="Whether people have edited the answer.")
    edited_sections: list[str] = Field(description="The sections people have changed.")


class AnswerVersion(BaseModel):
    version: int = Field(description="1 is the pipeline's answer; each edit adds one.")
    created_at: Timestamp | None = Field(description="When this version was made.")
    source: str = Field(description="pipeline or edit.")
    sections_changed: list[str] = Field(description="The sections this version changed.")
    key_id: str | None = Field(description="The API key that made it, if keys are on.")
    path: str = Field(description="Its file on the server's disk.")


EXAMPLE_VERSION = {
    "version": 2,
    "created_at": "2026-11-22T10:20:00.000Z",
    "source": "edit",
    "sections_changed": ["Sources"],
    "key_id": None,
    "path": "output/20261122_101500_1a2b3c4d/versions/2.md",
}
EXAMPLE_NOTE = {
    "id": 1,
    "section": "Sources",
    "text": "Check the 2032 figure with the energy agency.",
    "version": 2,
    "created_at": "2026-11-22T10:21:00.000Z",
    "key_id": None,
}


class OutputVersionsResponse(BaseModel):
    model_config = examples(
        {
            "run_id": "20261122_101500_1a2b3c4d",
            "latest_version": 2,
            "versions": [
                {**EXAMPLE_VERSION, "version": 1, "source": "pipeline", "sections_changed": []},
                EXAMPLE_VERSION,
            ],
        }
    )

    run_id: str = Field(description="The run's id.")
    latest_version: int = Field(description="The version GET .../output answers with.")
    versions: list[AnswerVersion] = Field(description="Every version, oldest first.")


class AnnotationRequest(BaseModel):
    model_config = examples(
        {"section": 0, "text": "Check the 2032 figure with the energy agency."}, forbid_extra=True
    )

    section: SectionName
    text: Text = Field(min_length=1, max_length=5000, description="The note, plain text.")


class AnnotationResponse(BaseModel):
    model_config = examples(EXAMPLE_NOTE)

    id: int = Field(description="The annotation's id within its run.")
    section: str = Field(description="The heading of the section it is about.")
    text: str = Field(description="The note.")
    version: int = Field(description="The answer version it was made on.")
    created_at: Timestamp = Field(description="When it was made.")
    key_id: str | None = Field(description="The API key that made it, if keys are on.")


class AnnotationListResponse(BaseModel):
    model_config = examples({"run_id": "20261122_101500_1a2b3c4d", "annotations": [EXAMPLE_NOTE]})

    run_id: str = Field(description="The run's id.")
    annotations: list[AnnotationResponse] = Field(description="Oldest first.")
