"""Users, API tokens and accounts: authentication, the default set-up, account CRUD."""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from typing import Any

from vidmorph import errors
from vidmorph.callbacks.guard import validate_reply_url
from vidmorph.callbacks.signing import new_secret
from vidmorph.domain.ids import parse_user_number
from vidmorph.domain.models import Account, User
from vidmorph.service import assets as asset_service
from vidmorph.service.context import AppContext

DEFAULT_USER_ID = 1
#: how long a verified token is trusted without asking the database again
_AUTH_CACHE_S = 30.0


def new_token(user_id: int) -> str:
    return f"user:{user_id}-{secrets.token_urlsafe(24)}"


def parse_token_user(token: str) -> int | None:
    """The user number in `user:<n>-<random>`, or None when the token is not of that form."""
    if not token.startswith("user:"):
        return None
    number, sep, rest = token[5:].partition("-")
    if not sep or not rest:
        return None
    return parse_user_number(number)


class Authenticator:
    """Bearer token -> User. Verified tokens are cached briefly, keyed by their hash."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._cache: dict[str, tuple[float, User]] = {}
        self._lock = threading.Lock()

    def cached(self, authorization: str | None) -> User | None:
        """The user of a token verified in the last seconds, without I/O; None when the
        database must be asked (`authenticate`). Unauthorized for a malformed header."""
        _, token = _bearer(authorization)
        hit = self._cache.get(_cache_key(token))  # a dict read is atomic under the GIL
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        return None

    def authenticate(self, authorization: str | None) -> User:
        user_id, token = _bearer(authorization)
        key = _cache_key(token)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        user = self.ctx.users.get(user_id)
        if user is None or not self.ctx.users.verify_token(user_id, token):
            raise errors.Unauthorized()
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now + _AUTH_CACHE_S, user)
        return user


def _bearer(authorization: str | None) -> tuple[int, str]:
    """(user number, token) of an `Authorization: Bearer user:<n>-...` header."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    user_id = parse_token_user(token)
    if scheme.lower() != "bearer" or user_id is None:
        raise errors.Unauthorized()
    return user_id, token


def _cache_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(ctx: AppContext, user_id: int | None = None) -> tuple[User, str]:
    """A new token for `user_id`, or for a brand-new user (with a default account)."""
    user = ctx.users.get(user_id) if user_id is not None else None
    if user is None:
        user = ctx.users.create(new_secret(), user_id)
        ensure_default_account(ctx, user.id)
    token = new_token(user.id)
    ctx.users.add_token(user.id, token)
    return user, token


def ensure_default_setup(ctx: AppContext) -> tuple[User, str | None]:
    """User 1 and its default account exist; returns a token when one was just made or fixed."""
    fixed = ctx.settings.api_token or None
    user = ctx.users.get(DEFAULT_USER_ID)
    token: str | None = None
    if user is None:
        user = ctx.users.create(new_secret(), DEFAULT_USER_ID)
        token = fixed or new_token(DEFAULT_USER_ID)
    elif fixed:
        token = fixed
    if token is not None:
        ctx.users.add_token(DEFAULT_USER_ID, token)
    ensure_default_account(ctx, DEFAULT_USER_ID)
    return user, token


def ensure_default_account(ctx: AppContext, user_id: int) -> None:
    s = ctx.settings
    if ctx.accounts.get(user_id, s.default_email) is None and not ctx.accounts.all_of(user_id):
        ctx.accounts.upsert(
            user_id,
            s.default_email,
            max_jobs=s.default_max_jobs,
            plan=s.default_plan,
            num_plan_credits=s.default_plan_credits,
        )


def resolve_account(ctx: AppContext, user: User, email: str | None) -> Account:
    """The named account, or the only one when `email` is omitted (useapi §1)."""
    if email:
        account = ctx.accounts.get(user.id, email)
        if account is None:
            raise errors.NotFound(f"Account {email} not found.")
        return account
    accounts = ctx.accounts.all_of(user.id)
    if not accounts:
        raise errors.NotFound(NO_CONFIGURATION)
    if len(accounts) > 1:
        raise errors.BadRequest("Parameter email is required when several accounts exist.")
    return accounts[0]


def default_account(ctx: AppContext, user: User) -> Account:
    """The account Runway's surface works on, which has no email parameter: the one named
    `VIDMORPH_DEFAULT_EMAIL`, else the user's oldest (404 when the user has none)."""
    named = ctx.accounts.get(user.id, ctx.settings.default_email)
    if named is not None:
        return named
    found = ctx.accounts.all_of(user.id)
    if not found:
        raise errors.NotFound(NO_CONFIGURATION)
    return min(found, key=lambda a: (a.created_at, a.email))


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


NO_CONFIGURATION = "Configuration not found. To create configuration use POST /accounts/email."


#: what an account email may hold: RFC 5321's unquoted ASCII addresses, less the characters
#: that cannot stand raw in a URL path (`#`, `%`, `/`, `?`), as composite ids do (useapi §1)
_ATOM = r"[A-Za-z0-9!$&'*+=^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
#: dot-atoms: no dot first, last or twice in a row
_EMAIL = re.compile(rf"(?=[^@]{{1,64}}@){_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+{_LABEL}")
#: the account fields only the operator sets, unless VIDMORPH_SELF_SERVICE_PLANS
OPERATOR_FIELDS = {"plan": "plan", "num_plan_credits": "numPlanCredits"}


def check_email(email: str) -> None:
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        raise errors.BadRequest(
            "email must be an email address: letters, digits and .!$&'*+=^_`{|}~- before the"
            " one @ (at most 64), a domain name after it, at most 254 characters in all."
        )


def save_account(ctx: AppContext, user: User, email: str, body: dict[str, Any]) -> Account:
    """Create the account (maxJobs required) or update the fields the body gives; its plan
    and credits only where tenants may set them (or as they are)."""
    check_email(email)
    if body.get("replyUrl"):
        validate_reply_url(body["replyUrl"], allow_private=ctx.settings.callback_allow_private)
    values: dict[str, Any] = {}
    for wire, column in (
        ("maxJobs", "max_jobs"),
        ("numPlanCredits", "num_plan_credits"),
        ("plan", "plan"),
        ("replyUrl", "reply_url"),
    ):
        if body.get(wire) is not None:
            values[column] = body[wire]
    if "replyUrl" in body and not body["replyUrl"]:
        values["reply_url"] = None  # null or "": no default callback any more
    if body.get("password"):
        values["password_hash"] = hash_password(body["password"])
    defaults = {
        "plan": ctx.settings.default_plan,
        "num_plan_credits": ctx.settings.default_plan_credits,
    }
    if not ctx.settings.self_service_plans:
        _keep_operator_fields(ctx, user, email, defaults, values)
    return ctx.accounts.upsert(
        user.id, email, defaults, max_accounts=ctx.settings.max_accounts, **values
    )


def delete_account(ctx: AppContext, user: User, email: str) -> None:
    """DELETE /accounts/{email}: the account goes with its finished tasks and its assets, and
    then their files (the rows first, so a link that outlives a storage failure serves
    nothing). NotFound for no such account; Conflict while tasks of it are to run."""
    removed = ctx.accounts.delete(user.id, email)
    if removed is None:
        raise errors.NotFound(NO_CONFIGURATION)
    for asset in removed:
        asset_service.delete_files(ctx, asset)


def _keep_operator_fields(
    ctx: AppContext, user: User, email: str, defaults: dict[str, Any], values: dict[str, Any]
) -> None:
    """Refuse a change to the plan or credits (the operator's, with `vidmorph account set`);
    the values an account has, sent back as a client read them, are taken as no change."""
    asked = {column: values.pop(column) for column in OPERATOR_FIELDS if column in values}
    if not asked:
        return
    current = ctx.accounts.get(user.id, email)
    if current is None:  # what it would be made with
        have = {**defaults, **ctx.accounts.granted(user.id, email)}
    else:
        have = {"plan": current.plan, "num_plan_credits": current.num_plan_credits}
    changed = [OPERATOR_FIELDS[c] for c, value in asked.items() if have[c] != value]
    if changed:
        raise errors.BadRequest(
            f"{' and '.join(changed)}: set by this server's operator (`vidmorph account set`),"
            " not through the API."
        )
