from __future__ import annotations

from django.contrib.auth import authenticate
from django_countries.serializer_fields import CountryField
from rest_framework import serializers

from accounts.constants import ApiKeyScope, Role
from accounts.models import ApiKey, AuditEvent, Invitation, Membership, Organization, User
from accounts.services import ORGANIZATION_EDITABLE_FIELDS


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "email", "first_name", "last_name", "date_joined"]
        read_only_fields = ["id", "email", "date_joined"]


class OrganizationSerializer(serializers.ModelSerializer):
    country = CountryField()
    role = serializers.SerializerMethodField()

    class Meta:
        model = Organization
        fields = ["id", "slug", *ORGANIZATION_EDITABLE_FIELDS, "role", "created_at"]
        read_only_fields = ["id", "slug", "role", "created_at"]

    def get_role(self, organization) -> str | None:
        membership = self.context.get("membership")
        return membership.role if membership else None


class MembershipOrganizationSerializer(serializers.ModelSerializer):
    """An organization the current user belongs to, for switching."""

    id = serializers.IntegerField(source="organization.id")
    name = serializers.CharField(source="organization.name")
    slug = serializers.CharField(source="organization.slug")

    class Meta:
        model = Membership
        fields = ["id", "name", "slug", "role"]


class MembershipSerializer(serializers.ModelSerializer):
    user = UserSerializer(read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user", "role", "receives_leads", "lead_capacity", "created_at"]
        read_only_fields = ["id", "user", "created_at"]


class InvitationSerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True)
    role = serializers.ChoiceField(choices=Role.choices, default=Role.AGENT)

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "status", "created_at", "expires_at"]
        read_only_fields = ["id", "status", "created_at", "expires_at"]


class ApiKeySerializer(serializers.ModelSerializer):
    prefix = serializers.CharField(source="display_prefix", read_only=True)
    status = serializers.CharField(read_only=True)
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=ApiKeyScope.choices), allow_empty=False)

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "scopes", "status", "created_at", "expires_at", "revoked_at", "last_used_at"]
        read_only_fields = ["id", "prefix", "status", "created_at", "revoked_at", "last_used_at"]


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The full key. It is shown only in this response.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_display", read_only=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "action",
            "actor",
            "target_type",
            "target_id",
            "target_repr",
            "changes",
            "ip_address",
            "created_at",
        ]
        read_only_fields = fields


class TokenObtainSerializer(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False, write_only=True)

    def validate(self, attrs):
        user = authenticate(self.context["request"], email=attrs["email"].lower(), password=attrs["password"])
        if user is None:
            raise serializers.ValidationError({"password": ["Email or password is not correct."]})
        attrs["user"] = user
        return attrs


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()
