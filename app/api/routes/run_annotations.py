"""Notes people add to a section of a finished run's answer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response, status

from app.api.auth import caller
from app.api.edit_models import AnnotationListResponse, AnnotationRequest, AnnotationResponse
from app.api.routes.responses import NOT_FOUND, problem_doc, service
from app.runs.run_service import API_PREFIX

router = APIRouter(prefix=f"{API_PREFIX}/runs", tags=["annotations"])


@router.post(
    "/{run_id}/annotations",
    status_code=status.HTTP_201_CREATED,
    response_model=AnnotationResponse,
    responses={
        **NOT_FOUND,
        409: problem_doc("The run has no answer yet (or ended without one)."),
        413: problem_doc("Request body too large."),
        422: problem_doc("Invalid note, or no such section (SECTION_NOT_FOUND lists the sections)."),
    },
)
def create_annotation(run_id: str, request: Request, body: AnnotationRequest) -> dict[str, Any]:
    """Add a note to a section of the answer."""
    runs, key = service(request), caller(request)
    runs.view(run_id, key)
    return runs.annotations.add(run_id, body.section, body.text, key.id if key else None)


@router.get("/{run_id}/annotations", response_model=AnnotationListResponse, responses=NOT_FOUND)
def list_annotations(run_id: str, request: Request) -> dict[str, Any]:
    """The run's notes, oldest first."""
    runs = service(request)
    runs.view(run_id, caller(request))
    return {"run_id": run_id, "annotations": runs.annotations.listing(run_id)}


@router.delete(
    "/{run_id}/annotations/{annotation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: problem_doc("Unknown run or annotation."), 410: problem_doc("The run was deleted.")},
)
def delete_annotation(
    run_id: str,
    annotation_id: Annotated[int, Path(description="The annotation's id, as its creation answered.")],
    request: Request,
) -> Response:
    """Remove one note."""
    runs = service(request)
    runs.view(run_id, caller(request))
    runs.annotations.delete(run_id, annotation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
