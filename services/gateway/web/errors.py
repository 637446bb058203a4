"""One error shape everywhere: ``{"error": {"code": "...", "message": "..."}}``."""

from __future__ import annotations

from apiflask import APIFlask, HTTPError, Schema
from apiflask.fields import Nested, String
from flask import render_template, request
from werkzeug.exceptions import HTTPException

from shared.errors import ServiceError
from shared.logs import get_logger

log = get_logger(__name__)

CODE_BY_STATUS = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


class ErrorDetail(Schema):
    code = String(required=True, metadata={"description": "A stable, machine-readable code"})
    message = String(required=True, metadata={"description": "What went wrong, for people"})


class Error(Schema):
    error = Nested(ErrorDetail, required=True)


def error_body(status: int, message: str, code: str | None = None) -> dict:
    return {"error": {"code": code or CODE_BY_STATUS.get(status, "error"), "message": message}}


# What a person sees when a page fails, by status.
PAGE_HEADINGS = {
    400: "That request did not work",
    403: "That is not allowed",
    404: "Page not found",
    405: "That request did not work",
    413: "That is too much to send",
    429: "Too many requests",
    503: "Temporarily unavailable",
}


def wants_page() -> bool:
    """A browser asking for a page of the site, not a client of the JSON API."""
    if request.path.startswith("/api/") or request.path.startswith("/healthz"):
        return False
    accept = request.accept_mimetypes
    return accept.quality("text/html") > accept.quality("application/json")


def error_response(status: int, message: str, code: str | None = None, headers=None):
    if wants_page():
        heading = PAGE_HEADINGS.get(status, "Something went wrong")
        page = render_template("error.html", heading=heading, message=message, status=status)
        return page, status, headers or {}
    return error_body(status, message, code), status, headers or {}


def _describe_validation(detail: dict) -> str:
    """Flatten apiflask's {location: {field: [messages]}} into one readable sentence."""
    parts = []
    for location, fields in (detail or {}).items():
        for field, messages in (fields or {}).items():
            text = "; ".join(str(message) for message in _flatten(messages))
            # marshmallow's name for the whole input (a body that is not an object).
            name = "the body" if field == "_schema" else field
            parts.append(f"{name} ({location}): {text}")
    return "invalid request: " + ", ".join(parts) if parts else "invalid request"


def _flatten(messages):
    if isinstance(messages, dict):
        for value in messages.values():
            yield from _flatten(value)
    elif isinstance(messages, list | tuple):
        for value in messages:
            yield from _flatten(value)
    else:
        yield messages


def install_error_handlers(app: APIFlask) -> None:
    app.config["VALIDATION_ERROR_STATUS_CODE"] = 400
    app.config["HTTP_ERROR_SCHEMA"] = Error
    app.config["VALIDATION_ERROR_SCHEMA"] = Error

    @app.error_processor
    def http_error(error: HTTPError):
        code = (error.extra_data or {}).get("code")
        if error.detail and error.status_code in (400, 422):
            message = _describe_validation(error.detail)
        else:
            message = error.message
        return error_response(error.status_code, message, code, error.headers)

    @app.errorhandler(ServiceError)
    def service_error(error: ServiceError):
        return error_response(error.status, error.message)

    @app.errorhandler(HTTPException)
    def werkzeug_error(error: HTTPException):
        status = error.code or 500
        response = error.get_response()
        headers = {k: v for k, v in response.headers.items() if k.lower() in ("allow",)}
        return error_response(status, error.description or error.name, headers=headers)

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        log.exception("unhandled_error")
        return error_response(500, "something went wrong on our side; it has been logged")
