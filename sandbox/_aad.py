"""A Microsoft Entra ID token endpoint on the https emulators, for azure-identity's credentials.

``ClientSecretCredential(tenant, client_id, secret, authority=<sandbox https URL>,
disable_instance_discovery=True, connection_verify=<ca_file>)`` works against it. Instance
discovery cannot be satisfied: MSAL sends it to login.microsoftonline.com for any authority it
does not know, so the product must pass ``disable_instance_discovery=True`` for the sandbox.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from sandbox._http import Request, Response

__all__ = ["token_routes"]


def token_routes(base_url: Callable[[], str]) -> list[tuple[str, str, str, Any]]:
    """Routes for tenant discovery and the v2.0 token endpoint (any tenant, any client)."""

    def openid(request: Request, match: re.Match[str]) -> Response:
        root = f"{base_url()}/{match['tenant']}"
        return Response(200, {
            "token_endpoint": f"{root}/oauth2/v2.0/token",
            "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
            "issuer": f"{root}/v2.0",
            "jwks_uri": f"{root}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "code id_token", "token id_token"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                      "client_secret_basic"],
            "tenant_region_scope": "EU",
        })

    def token(request: Request, match: re.Match[str]) -> Response:
        form = request.json_body()
        if form.get("grant_type") != "client_credentials":
            return Response(400, {
                "error": "unsupported_grant_type",
                "error_description": "AADSTS70003: The app requested an unsupported grant type "
                f"'{form.get('grant_type')}'.",
            })
        return Response(200, {
            "token_type": "Bearer",
            "expires_in": 3600,
            "ext_expires_in": 3600,
            "access_token": f"sandbox-{uuid.uuid4().hex}",
        })

    return [
        ("GET", r"/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration",
         "aad.openidConfiguration", openid),
        ("POST", r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token", "aad.token", token),
    ]
