"""Authorization as AWS decides it, where moto 5.2.1 allows or refuses otherwise.

Cross-account AssumeRole is checked against the role's trust policy (ExternalId and aws:PrincipalArn
included); a request to another account's bucket needs that bucket's policy too; SigV4 is checked over the
URI as sent; identity-policy denials name the resource and the policy type that refused; EventBridge
PutEvents is authorized against the bus it targets and refused in EventBridge's JSON shape.
"""

import fnmatch
import json
from typing import Any


def trust_policy_allows(
    policy: dict[str, Any],
    caller_account: str,
    caller_arns: set[str],
    external_id: str | None,
    principal_arn: str = "",
) -> bool:
    """The IAM rule for a trust policy: some Allow statement matches and no Deny statement does.

    Understands Principal.AWS (account id, :root ARN, exact ARN, "*"), StringEquals on sts:ExternalId, and
    aws:PrincipalArn (the caller's role ARN for an assumed role, else its own ARN) under ArnLike, ArnEquals,
    StringLike or StringEquals, as source-account/template.yaml's ConsumerPrincipalArns writes it.
    A statement with any other condition does not match, so an Allow we cannot evaluate never grants.
    """
    principals = {caller_account, f"arn:aws:iam::{caller_account}:root", *caller_arns}

    def as_list(value: Any) -> list[Any]:
        return value if isinstance(value, list) else [value]

    def matches(statement: dict[str, Any]) -> bool:
        actions = {a.lower() for a in as_list(statement.get("Action", []))}
        if not actions & {"sts:assumerole", "sts:*", "*"}:
            return False
        principal = statement.get("Principal", {})
        aws = principal if principal == "*" else principal.get("AWS", [])
        if not any(p == "*" or p in principals for p in as_list(aws)):
            return False
        for operator, conditions in statement.get("Condition", {}).items():
            for key, values in conditions.items():
                # Several values in one condition are alternatives, as in IAM.
                if operator == "StringEquals" and key.lower() == "sts:externalid":
                    if external_id not in as_list(values):
                        return False
                elif key.lower() == "aws:principalarn" and operator in {"ArnLike", "StringLike"}:
                    if not any(fnmatch.fnmatchcase(principal_arn, v) for v in as_list(values)):
                        return False
                elif key.lower() == "aws:principalarn" and operator in {"ArnEquals", "StringEquals"}:
                    if principal_arn not in as_list(values):
                        return False
                else:
                    return False
        return True

    statements = as_list(policy.get("Statement", []))
    if any(s.get("Effect") == "Deny" and matches(s) for s in statements):
        return False
    return any(s.get("Effect") == "Allow" and matches(s) for s in statements)


def enforce_cross_account_trust() -> None:
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.core.exceptions import _RESTError
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends
    from moto.sts.responses import TokenResponse

    class AssumeRoleDenied(_RESTError):
        code = 403  # what real STS returns, so SDKs raise AccessDenied with $metadata.httpStatusCode 403

    original_assume_role = TokenResponse.assume_role

    def assume_role(self: TokenResponse) -> Any:
        # Before reset-auth the sandbox provisions itself by assuming roles that do not exist yet.
        if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
            return original_assume_role(self)
        role_arn = self._get_param("RoleArn") or ""
        external_id = self._get_param("ExternalId")
        _, caller_arn, caller_account = sts_backends[self.current_account][self.partition].get_caller_identity(
            self.access_key, self.region
        )
        caller_arns = {caller_arn}
        principal_arn = caller_arn
        if ":assumed-role/" in caller_arn:  # a trust policy may name the caller's role, not its session
            role_name = caller_arn.split("/")[1]
            principal_arn = f"arn:aws:iam::{caller_account}:role/{role_name}"
            caller_arns.add(principal_arn)
        try:
            role_account = role_arn.split(":")[4]
            role = iam_backends[role_account][self.partition].get_role_by_arn(role_arn)
            policy = json.loads(role.assume_role_policy_document)
            allowed = trust_policy_allows(policy, caller_account, caller_arns, external_id, principal_arn)
        except Exception:  # no such account or role, or an unreadable ARN: STS says AccessDenied too
            allowed = False
        if not allowed:
            raise AssumeRoleDenied(
                "AccessDenied",
                f"User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
            )
        return original_assume_role(self)

    TokenResponse.assume_role = assume_role  # type: ignore[method-assign]


def sign_check_raw_uri() -> None:
    """Check SigV4 signatures against the request URI as sent, not as werkzeug decoded it.

    moto 5.2.1 recomputes the signature from werkzeug's request.url, which turns %2F into / and %C3%BC into
    ü; botocore then signs that decoded text, so every request with a / or a non-ASCII character in its
    query (Prefix=in/, Delimiter=/, StartAfter) or a non-ASCII or escaped key fails SignatureDoesNotMatch
    once auth is enforced, although real S3 accepts it.
    """
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.core.responses import BaseResponse

    original_setup_class = BaseResponse.setup_class
    original_authorize = ActionAuthenticatorMixin._authenticate_and_authorize_action

    def setup_class(self: BaseResponse, request: Any, *args: Any, **kwargs: Any) -> None:
        original_setup_class(self, request, *args, **kwargs)
        self.raw_uri = getattr(request, "environ", {}).get("RAW_URI")  # type: ignore[attr-defined]

    def authorize(self: Any, *args: Any, **kwargs: Any) -> None:
        raw_uri = getattr(self, "raw_uri", None)
        if not raw_uri:
            return original_authorize(self, *args, **kwargs)
        decoded_uri, self.uri = self.uri, raw_uri
        try:
            return original_authorize(self, *args, **kwargs)
        finally:
            self.uri = decoded_uri

    BaseResponse.setup_class = setup_class  # type: ignore[method-assign]
    ActionAuthenticatorMixin._authenticate_and_authorize_action = authorize  # type: ignore[method-assign]


def identity_denials_say_why() -> None:
    """Word identity-policy denials as AWS does, naming the resource and the policy type that refused."""
    from moto.core.exceptions import AccessDeniedError, _RESTError
    from moto.iam.access_control import IAMRequest

    original_check = IAMRequest.check_action_permitted

    def check_action_permitted(self: Any, resource: str) -> None:
        try:
            original_check(self, resource)
        except AccessDeniedError as denied:
            # A same-account role's trust policy also refuses through here; leave that message alone.
            if self._is_assuming_role_operation(resource):
                raise
            on_resource = "" if resource == "*" else f" on resource: {resource}"
            _RESTError.__init__(  # rebuilds the XML body around the new message
                denied,
                "AccessDenied",
                f"User: {self._access_key.arn} is not authorized to perform: {self._action}{on_resource}"
                f" because no identity-based policy allows the {self._action} action",
            )
            raise

    IAMRequest.check_action_permitted = check_action_permitted  # type: ignore[method-assign]


def authorize_put_events_on_the_bus() -> None:
    """Authorize PutEvents against the event bus it targets, and deny it in EventBridge's JSON shape."""
    from moto.core.exceptions import AccessDeniedError, JsonRESTError
    from moto.events.responses import EventsHandler

    def determine_resource(self: EventsHandler) -> str:
        if self._get_action() != "PutEvents":
            return "*"
        try:
            entries = json.loads(self.body or "{}").get("Entries", [])
        except ValueError:
            return "*"
        buses = {entry.get("EventBusName") or "default" for entry in entries}
        if len(buses) != 1:
            return "*"  # entries for several buses pass only a policy that allows them all
        bus = buses.pop()
        if bus.startswith("arn:"):
            return bus
        return f"arn:{self.partition}:events:{self.region}:{self.current_account}:event-bus/{bus}"

    class AccessDeniedException(JsonRESTError):
        code = 403

    original_authorize = EventsHandler._authenticate_and_authorize_normal_action

    def authorize(self: EventsHandler, resource: str = "*") -> None:
        try:
            original_authorize(self, resource)
        except AccessDeniedError as denied:
            raise AccessDeniedException("AccessDeniedException", denied.message) from denied

    EventsHandler._determine_resource = determine_resource  # type: ignore[attr-defined]
    EventsHandler._authenticate_and_authorize_normal_action = authorize  # type: ignore[method-assign]


def bucket_policy_allows(policy: dict[str, Any], action: str, resource: str, caller_arns: set[str]) -> bool:
    """The bucket-policy half of a cross-account request: some Allow statement names the caller (account id,
    :root ARN, exact ARN or "*"), the action and the resource, and no Deny statement does. A statement with
    a Condition does not match, so an Allow we cannot evaluate never grants (and a Deny we cannot evaluate
    never refuses)."""

    def as_list(value: Any) -> list[Any]:
        return value if isinstance(value, list) else [value]

    def matches(statement: dict[str, Any]) -> bool:
        if statement.get("Condition"):
            return False
        principal = statement.get("Principal")
        named = ["*"] if principal == "*" else as_list((principal or {}).get("AWS", []))
        if not any(name == "*" or name in caller_arns for name in named):
            return False
        if not any(fnmatch.fnmatchcase(action, pattern) for pattern in as_list(statement.get("Action", []))):
            return False
        return any(fnmatch.fnmatchcase(resource, pattern) for pattern in as_list(statement.get("Resource", [])))

    statements = as_list(policy.get("Statement", []))
    if any(s.get("Effect") == "Deny" and matches(s) for s in statements):
        return False
    return any(s.get("Effect") == "Allow" and matches(s) for s in statements)


def enforce_cross_account_bucket_policies() -> None:
    """A request from another account than the bucket's needs the bucket's policy too, as in S3.

    moto 5.2.1 evaluates only the caller's identity policies, so a B identity allowed s3:GetObject on A's
    bucket by its own policy reads it, where S3 also needs A's bucket policy to grant it. Server-side copy
    runs with B's role and depends on that grant (source-account/template.yaml's ServerSideCopyPrincipalArn).
    """
    from moto.iam.access_control import S3IAMRequest
    from moto.s3.exceptions import S3AccessDeniedError, S3ClientError
    from moto.s3.models import s3_backends

    class ResourcePolicyDenied(S3AccessDeniedError):
        def __init__(self, message: str) -> None:
            S3ClientError.__init__(self, "AccessDenied", message)

    original_check = S3IAMRequest.check_action_permitted

    def check_action_permitted(self: Any, resource: str) -> None:
        original_check(self, resource)
        bucket = resource.split(":::", 1)[-1].split("/", 1)[0] if ":::" in resource else ""
        owner = s3_backends.bucket_accounts.get(bucket)
        caller = self._access_key
        if not owner or owner[1] == caller.account_id:
            return
        arns = {caller.account_id, f"arn:aws:iam::{caller.account_id}:root", caller.arn}
        role = getattr(caller, "_owner_role_name", None)
        if role:
            arns.add(f"arn:aws:iam::{caller.account_id}:role/{role}")
        stored = s3_backends[owner[1]][owner[0]].buckets[bucket].policy
        if stored and bucket_policy_allows(json.loads(stored), self._action, resource, arns):
            return
        raise ResourcePolicyDenied(
            f"User: {caller.arn} is not authorized to perform: {self._action} on resource: {resource}"
            f" because no resource-based policy allows the {self._action} action"
        )

    S3IAMRequest.check_action_permitted = check_action_permitted  # type: ignore[method-assign]
