"""Resolving Confluent-framed Avro records through a schema registry (Confluent API, e.g. Apicurio's ccompat).

``RegistryClient(url)(schema_id)`` returns the parsed writer schema, fetched once per id and cached; any
failure is a ``LookupError`` (the record becomes a dead letter, the loop goes on).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import fastavro

__all__ = ["RegistryClient"]


class RegistryClient:
    def __init__(self, base_url: str, *, timeout_s: float = 5.0, max_cached: int = 10_000) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.max_cached = max_cached
        self._cache: dict[int, Any] = {}

    def __call__(self, schema_id: int) -> Any:
        cached = self._cache.get(schema_id)
        if cached is not None:
            return cached
        url = f"{self.base_url}/schemas/ids/{schema_id}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as response:
                body = json.loads(response.read())
            schema = fastavro.parse_schema(json.loads(body["schema"]))
        except urllib.error.HTTPError as exc:
            raise LookupError(f"registry answered {exc.code} for {url}") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise LookupError(f"registry lookup {url} failed: {exc}") from None
        if len(self._cache) >= self.max_cached:
            self._cache.clear()
        self._cache[schema_id] = schema
        return schema
