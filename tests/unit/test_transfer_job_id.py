"""Mapping.job_id is exactly uuid.uuid5(namespace, '<runbook>:<legacy id>'): the ids earlier runs wrote stay
the ids a rerun writes (ON CONFLICT DO NOTHING relies on it)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from runbook.model import TransferSettings
from runbook.transfer.mapping import Mapping


@pytest.mark.parametrize("key", ["job-1", "clz9x0y1z0000abcd", 42, "é ü 日本", "x" * 500, ""])
def test_job_id_is_uuid5(key: Any) -> None:
    namespace = uuid.UUID(TransferSettings().namespace)
    m = Mapping(None, None, None, None, TransferSettings(), namespace, "stages", False)  # type: ignore[arg-type]
    assert m.job_id(key) == str(uuid.uuid5(namespace, f"stages:{key}"))
    assert m.job_id(key) == m.job_id(key)
