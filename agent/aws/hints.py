"""Next steps for AWS failures every AWS probe can meet (the credential providers' own, AWS's common errors), and
how a probe picks the hint for an AWS failure.

Fields: the probe's credential_facts() (endpoint, url, endpoint_host, proxy_state, role_arn,
web_identity_token_file) and call_facts() (service, aws_operation, aws_endpoint, aws_host, endpoint_variable).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from agent.aws.errors import AWS_CALLS, COMMON_HINTS, SERVICE_NAMES
from agent.shared.answers import CODE_SUFFIX
from agent.shared.hints import missing_fields, render
from agent.shared.reasons import Failure, Reason

_REGION_DISABLED = (
    "STS is not activated in the region of {aws_host} for this account: activate it (IAM > Account settings >"
    " Security Token Service (STS) > Endpoints), or let the SDK use an active region's endpoint"
)
_SESSION_POLICY = (
    "STS rejected the session policy or tags sent with {aws_operation} (malformed or too large): the agent sends"
    " none, so they come from the profile in AWS_CONFIG_FILE or from the role's session tags"
)

# Keyed by failure code, or by `prefix:reason` for a prefix's other codes (web_identity:auth, assume_role:config...).
PROVIDER_HINTS: Mapping[str, str] = {
    "credentials:not_found": (
        "the ECS agent at {endpoint} has no credentials for this task (it answered 400 for the task's credentials"
        " ID, e.g. after the agent lost its state): replacing the task fixes it; if new tasks on this container"
        " instance see it too, restart or replace the instance's ECS agent"
    ),
    "credentials:proxy": (
        "a proxy between the task and {endpoint} answered instead of the endpoint: requests to {endpoint_host}"
        " must not go through a proxy. Add {endpoint_host} (and 169.254.169.254) to NO_PROXY for SDKs and tools"
        " that read HTTP(S)_PROXY ({proxy_state}), and exclude it from a transparent proxy or service mesh"
        " egress (App Mesh: EgressIgnoredIPs=169.254.170.2,169.254.169.254); test with"
        " `curl --noproxy '*' -s {url}` from inside the task"
    ),
    "web_identity:token_file_missing": (
        "AWS_WEB_IDENTITY_TOKEN_FILE={web_identity_token_file} is not in this container: on EKS the token is"
        " projected only into pods whose service account has the eks.amazonaws.com/role-arn annotation (IRSA):"
        " annotate it and restart the pod; elsewhere fix the path, or unset AWS_WEB_IDENTITY_TOKEN_FILE"
    ),
    "web_identity:token_file_unreadable": (
        "make AWS_WEB_IDENTITY_TOKEN_FILE={web_identity_token_file} readable by the agent's user (on EKS: the"
        " pod's securityContext.fsGroup)"
    ),
    "web_identity:no_role_arn": (
        "set AWS_ROLE_ARN to the IAM role this service account may assume (EKS sets it from the service account's"
        " eks.amazonaws.com/role-arn annotation), or unset AWS_WEB_IDENTITY_TOKEN_FILE to use another source"
    ),
    "web_identity:InvalidIdentityToken": (
        "STS could not validate the token in AWS_WEB_IDENTITY_TOKEN_FILE: the cluster's OIDC issuer must be an"
        " IAM OIDC identity provider of this account with audience sts.amazonaws.com (`aws iam"
        " list-open-id-connect-providers`; eksctl utils associate-iam-oidc-provider)"
    ),
    "web_identity:IDPRejectedClaim": (
        "the trust policy of {role_arn} does not accept this token; its conditions must match the token's sub"
        " (system:serviceaccount:NAMESPACE:SERVICE_ACCOUNT) and aud (sts.amazonaws.com); see `aws iam get-role"
        " --role-name ROLE --query Role.AssumeRolePolicyDocument`"
    ),
    "web_identity:AccessDenied": (
        "{role_arn} does not trust this cluster's OIDC provider: its trust policy needs a statement allowing"
        " sts:AssumeRoleWithWebIdentity to Principal Federated arn:aws:iam::ACCOUNT:oidc-provider/ISSUER"
    ),
    "web_identity:ExpiredTokenException": (
        "the token in AWS_WEB_IDENTITY_TOKEN_FILE has expired: the kubelet refreshes a projected token in place, so"
        " mount the projected volume rather than a copy of the token; then check the node's clock"
    ),
    "web_identity:RegionDisabledException": _REGION_DISABLED,
    "web_identity:MalformedPolicyDocument": _SESSION_POLICY,
    "web_identity:PackedPolicyTooLarge": _SESSION_POLICY,
    "web_identity:auth": (
        "STS refused the web identity token for {role_arn} ({aws_operation} at {aws_host}): check the role's"
        " trust policy and the cluster's IAM OIDC provider"
    ),
    "web_identity:config": (
        "fix the EKS web identity settings named above (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN), then run"
        " `aws sts get-caller-identity` in the pod"
    ),
    "web_identity:server": (
        "STS could not check the web identity token just now (e.g. it could not reach the cluster's OIDC"
        " issuer); usually transient: it is retried on the next run"
    ),
    "assume_role:AccessDenied": (
        "the profile's source credentials may not assume its role_arn (AWS_PROFILE, AWS_CONFIG_FILE): allow"
        " sts:AssumeRole on the role for the source identity, and the role's trust policy must trust it"
    ),
    "assume_role:ExpiredTokenException": (
        "the session token of the profile's source credentials has expired: refresh the source profile's"
        " credentials (or its AWS_SESSION_TOKEN)"
    ),
    "assume_role:RegionDisabledException": _REGION_DISABLED,
    "assume_role:MalformedPolicyDocument": _SESSION_POLICY,
    "assume_role:PackedPolicyTooLarge": _SESSION_POLICY,
    "assume_role:auth": (
        "STS refused to assume the profile's role_arn ({aws_operation} at {aws_host}): run `aws sts"
        " get-caller-identity` with the same AWS_PROFILE"
    ),
    "assume_role:config": "fix the role profile in AWS_CONFIG_FILE (role_arn, source_profile, credential_source)",
    "assume_role:server": "STS answered AssumeRole with a server error; usually transient: retried on the next run",
    "aws:profile_not_found": "set AWS_PROFILE to a profile in AWS_CONFIG_FILE, or unset it",
    "aws:invalid_config": "fix the AWS configuration named above (AWS_CONFIG_FILE and the AWS_* variables)",
    "imds:no_token": (
        "the instance metadata service did not hand this container an IMDSv2 token; from a container the"
        " instance needs HttpPutResponseHopLimit 2 (`aws ec2 modify-instance-metadata-options"
        " --http-put-response-hop-limit 2`); better, give the task its own role (taskRoleArn)"
    ),
    "imds:bad_endpoint": "fix or unset AWS_EC2_METADATA_SERVICE_ENDPOINT",
}

_WRONG_ENDPOINT = (
    "{aws_host} does not know {aws_operation}: AWS_ENDPOINT_URL (or {endpoint_variable}) points at something that is"
    " not {service}"
)
_UNSIGNED = (
    "{aws_host} received a request without a complete signature: check that nothing between the task and AWS (a"
    " proxy) rewrites requests, and that AWS_ENDPOINT_URL points at AWS"
)
_PARAMETERS = "{service} rejected the request's parameters: check the value the message names"

# Keyed by AWS error code, whatever the service: meanings AWS documents as common to every API. Used after a
# probe's own entry for the exact code, before its entry for the reason (a probe says "auth" better itself).
AWS_CODE_HINTS: Mapping[str, str] = {
    "RequestExpired": (
        "{aws_host} rejected the request's signing time: this task's clock is more than 5 minutes off (check"
        " the host's NTP/chrony); the credentials themselves may be fine"
    ),
    "OptInRequired": (
        "this account is not subscribed to {service} in the region of {aws_host}: enable the region (Account"
        " settings) or use an enabled one"
    ),
    "RegionDisabledException": _REGION_DISABLED,
    "IDPCommunicationError": (
        "STS could not reach the token's OIDC issuer to validate it; usually transient: retried on the next run"
    ),
    "InvalidAction": _WRONG_ENDPOINT,
    "MissingAction": _WRONG_ENDPOINT,
    "MalformedQueryString": _WRONG_ENDPOINT,
    "InvalidQueryParameter": _WRONG_ENDPOINT,
    "IncompleteSignature": _UNSIGNED,
    "MissingAuthenticationToken": _UNSIGNED,
    "ValidationError": _PARAMETERS,
    "ValidationException": _PARAMETERS,
    "InvalidParameterValue": _PARAMETERS,
    "InvalidParameterCombination": _PARAMETERS,
    "InvalidParameterException": _PARAMETERS,
    "MissingParameter": _PARAMETERS,
}


def common_hint(failure: Failure, facts: Mapping[str, str]) -> str:
    """The shared hint for a credentials, provider or throttling failure; '' means the probe's own table answers."""
    code = failure.code
    if code.endswith(f":{CODE_SUFFIX}"):  # an answer past the cap: who sent it
        service = "the ECS credentials endpoint" if code.startswith("credentials:") else facts.get("service")
        return render(COMMON_HINTS[CODE_SUFFIX], {**facts, "service": service or "AWS"})
    template = COMMON_HINTS.get(code) or PROVIDER_HINTS.get(code) or PROVIDER_HINTS.get(_family(failure))
    if not template and code.startswith("credentials:"):
        template = COMMON_HINTS["credentials:auth" if failure.reason is Reason.AUTH else "credentials:reach"]
    if not template and failure.reason is Reason.THROTTLED:
        template = COMMON_HINTS["throttled"]
    if code.startswith("credentials:") and template and missing_fields(template, facts):
        template = COMMON_HINTS["credentials:provider"]  # no container endpoint: which source failed, in general
    return render(template, facts) if template else ""


def _family(failure: Failure) -> str:
    if failure.code.startswith("credentials:proxy_"):
        return "credentials:proxy"
    return f"{failure.code.split(':', 1)[0]}:{failure.reason.value}"


def aws_hint(failure: Failure, facts: Mapping[str, str], own: Mapping[str, str]) -> str:
    """The next step for an AWS failure: the shared entry for its code or kind, else the probe's own (`own`) for the
    code, the entry for its AWS error code whatever the service, the probe's own for the reason; '' if none."""
    found = common_hint(failure, facts)
    if found:
        return found
    aws_code = failure.code.rsplit(":", 1)[-1]
    template = own.get(failure.code) or AWS_CODE_HINTS.get(aws_code) or own.get(failure.reason.value, "")
    return render(template, facts)


def call_facts(failure: Failure, service: str, endpoint: str | None = None) -> dict[str, str]:
    """Hint values naming the call that failed: service (its display name), aws_operation, aws_endpoint, aws_host.

    The endpoint is the one actually called, from the answer or the error (see note_endpoint); else `endpoint`
    (the client's meta.endpoint_url); never recomputed from a region.
    """
    operation = failure.details.get("aws_operation", "")
    if operation in AWS_CALLS:
        service = AWS_CALLS[operation][0]
    name = SERVICE_NAMES.get(service, service)
    url = failure.details.get("aws_endpoint") or endpoint
    host = (urlsplit(url).netloc or url) if url else f"the {name} endpoint"
    return {
        "service": name,
        "aws_operation": operation or "the call",
        "aws_endpoint": url or host,
        "aws_host": host,
        "endpoint_variable": f"AWS_ENDPOINT_URL_{name.upper().replace(' ', '_')}",
    }
