"""Each caller is throttled once, by what it is: an API key, a user, or an anonymous address."""

import time

import redis
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import ApiKey
from leadflow.redis import redis_client, redis_key


class WindowRateThrottle(SimpleRateThrottle):
    """A counter per caller and fixed window (``INCR``), in one Redis round trip.

    DRF's throttle keeps every request's timestamp in a cached list that it reads, rewrites and pickles on each
    request: at thousands a minute per key that list costs more than the request it guards. A fixed window may let
    a caller through at up to twice the rate across a window boundary, which is fine for a quota that protects the
    service rather than bills the caller. Without Redis it falls back to DRF's list.
    """

    def allow_request(self, request, view):
        client = redis_client()
        if client is None or self.rate is None:
            return super().allow_request(request, view)
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        window = int(time.time() // self.duration)
        key = redis_key(f"{self.key}:{window}")
        try:
            pipeline = client.pipeline(transaction=False)
            pipeline.incr(key)
            pipeline.expire(key, self.duration + 1)
            count, _ = pipeline.execute()
        except redis.RedisError:  # Redis is down: serve the request rather than fail it for a quota check
            return True
        self.window_ends_at = (window + 1) * self.duration
        return count <= self.num_requests

    def wait(self):
        if redis_client() is None:
            return super().wait()
        return max(0.0, self.window_ends_at - time.time())


class ApiKeyRateThrottle(WindowRateThrottle):
    """Requests per API key, so one integration cannot starve another."""

    scope = "api_key"

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiKey):
            return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}
        return None


class UserRateThrottle(WindowRateThrottle):
    scope = "user"

    def get_cache_key(self, request, view):
        if request.user and request.user.is_authenticated:
            return self.cache_format % {"scope": self.scope, "ident": request.user.pk}
        return None


class AnonRateThrottle(WindowRateThrottle):
    scope = "anon"

    def get_cache_key(self, request, view):
        if request.auth is not None or (request.user and request.user.is_authenticated):
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class TokenObtainRateThrottle(WindowRateThrottle):
    """Password guessing through the token endpoint, limited per address."""

    scope = "token_obtain"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
