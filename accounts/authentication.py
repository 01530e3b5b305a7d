"""API key authentication: ``Authorization: Api-Key lf_…`` or ``X-API-Key: lf_…``."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from .services import ApiKeyInvalid, api_key_authenticate


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Api-Key"

    def authenticate(self, request):
        raw_key = request.META.get("HTTP_X_API_KEY", "").strip()
        if not raw_key:
            header = authentication.get_authorization_header(request).decode("latin-1").split()
            if not header or header[0].lower() != self.keyword.lower():
                return None
            if len(header) != 2:
                raise exceptions.AuthenticationFailed("Send the key as `Authorization: Api-Key <key>`.")
            raw_key = header[1]
        try:
            api_key = api_key_authenticate(raw_key)
        except ApiKeyInvalid as error:
            raise exceptions.AuthenticationFailed(error.reason) from error
        # An API key acts for its organization, not for a person.
        return AnonymousUser(), api_key

    def authenticate_header(self, request):
        return self.keyword


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "X-API-Key"}
