"""Staff sign-in for the web pages: session cookie, CSRF protection and role checks."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from infoopt.core.deps import RedisDep, SessionDep, client_address
from infoopt.core.errors import DomainError
from infoopt.core.languages import LANGUAGES
from infoopt.core.web import STAFF_LANGUAGE_COOKIE, staff_text, templates
from infoopt.staff.accounts import (
    Role,
    SignInFailed,
    SignInThrottled,
    StaffSession,
    StaffUser,
    end_session,
    session_for_token,
    sign_in,
    start_session,
)
from infoopt.staff.throttle import SignInThrottle

SESSION_COOKIE = "infoopt_session"
LOGIN_CSRF_COOKIE = "infoopt_login_csrf"


class NotSignedIn(DomainError):
    status_code = 401
    code = "not_signed_in"


class NotAllowed(DomainError):
    status_code = 403
    code = "forbidden"


class CsrfRejected(DomainError):
    status_code = 403
    code = "csrf_rejected"


@dataclass(frozen=True, slots=True)
class Staff:
    """The signed-in person behind a request."""

    user: StaffUser
    session: StaffSession
    # Signed in with `Authorization: Bearer` (an API client): no cookie, so no CSRF to check.
    via_bearer: bool = False

    @property
    def username(self) -> str:
        return self.user.username

    @property
    def csrf_token(self) -> str:
        return self.session.csrf_token


def _secure_cookies(request: Request) -> bool:
    settings = request.app.state.settings
    return bool(settings.is_production or (settings.public_url or "").startswith("https://"))


async def current_staff(request: Request, session: SessionDep) -> Staff:
    """The signed-in staff member (bearer token or session cookie); pages redirect to the sign-in form."""
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    via_bearer = scheme.lower() == "bearer" and bool(bearer.strip())
    token = bearer.strip() if via_bearer else request.cookies.get(SESSION_COOKIE, "")
    found = await session_for_token(session, token)
    if found is None:
        raise NotSignedIn("sign in first")
    user, record = found
    return Staff(user, record, via_bearer=via_bearer)


def require_roles(*roles: Role) -> object:
    """A dependency admitting only the given roles."""

    async def check(staff: Annotated[Staff, Depends(current_staff)]) -> Staff:
        if staff.user.role not in roles:
            raise NotAllowed(f"this needs the role {' or '.join(roles)}")
        return staff

    return Depends(check)


def check_csrf(staff: Staff, submitted: str | None) -> None:
    """A state-changing form must carry the session's CSRF token (bearer clients send no cookies)."""
    if staff.via_bearer:
        return
    if not submitted or not hmac.compare_digest(submitted, staff.csrf_token):
        raise CsrfRejected("the form expired or did not come from this site; reload the page and try again")


CurrentStaff = Annotated[Staff, Depends(current_staff)]
CurrentAdmin = Annotated[Staff, require_roles(Role.ADMIN)]
CurrentKnowledgeReader = Annotated[Staff, require_roles(Role.ADMIN, Role.SUPERVISOR, Role.CONSULTANT)]

router = APIRouter(tags=["staff sign-in"], include_in_schema=False)


async def not_signed_in(request: Request, error: NotSignedIn) -> Response:
    """Pages send the browser to the sign-in form; the API answers 401."""
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": error.code, "detail": str(error)}, status_code=401)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


async def not_allowed(request: Request, error: NotAllowed) -> Response:
    """Pages say plainly that the page is for another role, with a way on; the API answers 403."""
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": error.code, "detail": str(error)}, status_code=403)
    return templates.TemplateResponse(request, "not_allowed.html", {"staff": None}, status_code=403)


def _login_page(
    request: Request, *, error: str | None = None, username: str = "", status: int = 200
) -> Response:
    token = secrets.token_urlsafe(24)
    response = templates.TemplateResponse(
        request,
        "login.html",
        {
            "csrf_token": token,
            "error": error,
            "username": username,
            "next": request.query_params.get("next", ""),
        },
        status_code=status,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_secure_cookies(request),
        max_age=3600,
    )
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request) -> Response:
    """The sign-in form."""
    return _login_page(request)


def landing_page(role: Role) -> str:
    """Where each role starts: admins in the editor, consultants and supervisors in the ticket queue."""
    return "/admin/kb" if role is Role.ADMIN else "/staff/tickets"


def _safe_next(target: str) -> str:
    # Only paths on this site: never an absolute or protocol-relative URL.
    return target if target.startswith("/") and not target.startswith("//") else "/admin/kb"


@router.post("/login")
async def login(
    request: Request,
    session: SessionDep,
    redis: RedisDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=512)],
    csrf_token: Annotated[str, Form(max_length=64)],
    next: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    """Check the credentials and start a session."""
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, csrf_token):
        return _login_page(
            request,
            error=staff_text(request, "The form expired. Please try again."),
            username=username,
            status=403,
        )
    try:
        user = await sign_in(
            session,
            SignInThrottle(redis),
            address=client_address(request),
            username=username,
            password=password,
        )
    except SignInThrottled as throttled:
        response = _login_page(
            request,
            error=staff_text(request, "Too many failed attempts. Wait a moment, then try again."),
            username=username,
            status=429,
        )
        response.headers["Retry-After"] = str(throttled.retry_after)
        return response
    except SignInFailed:
        return _login_page(
            request,
            error=staff_text(request, "Wrong username or password, or the account is locked for a while."),
            username=username,
            status=401,
        )
    token, _record = await start_session(session, user)
    response = RedirectResponse(_safe_next(next) if next else landing_page(user.role), status_code=303)
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="lax", secure=_secure_cookies(request), max_age=36000
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.get("/staff/language")
async def choose_staff_language(
    to: Annotated[str, Query(max_length=2)], next: Annotated[str, Query(max_length=300)] = "/staff/tickets"
) -> Response:
    """Switch the staff pages' language (remembered in this browser for a year)."""
    response = RedirectResponse(_safe_next(next), status_code=303)
    if to in LANGUAGES:
        response.set_cookie(STAFF_LANGUAGE_COOKIE, to, max_age=365 * 24 * 3600, samesite="lax", httponly=True)
    return response


@router.post("/logout")
async def logout(
    request: Request, session: SessionDep, staff: CurrentStaff, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    """End the session."""
    check_csrf(staff, csrf_token)
    await end_session(session, request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")
    password: str = Field(min_length=1, max_length=512, pattern=r"^[^\x00]+$")


class LoginResponse(BaseModel):
    access_token: str = Field(description="send it as `Authorization: Bearer <token>`; valid one working day")
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    role: Role
    office: str | None


api = APIRouter(prefix="/api/v1/auth", tags=["staff sign-in"])


@api.post(
    "/login",
    response_model=LoginResponse,
    responses={
        401: {"description": "wrong username or password (the same answer for every failure)"},
        429: {"description": "too many failed sign-ins from this address; see Retry-After"},
    },
)
async def api_login(
    credentials: LoginRequest, request: Request, session: SessionDep, redis: RedisDep
) -> LoginResponse:
    """A bearer token for the staff API, under the same throttling as the sign-in form."""
    user = await sign_in(
        session,
        SignInThrottle(redis),
        address=client_address(request),
        username=credentials.username,
        password=credentials.password,
    )
    token, _record = await start_session(session, user)
    return LoginResponse(access_token=token, role=user.role, office=user.office_code)
