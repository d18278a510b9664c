"""Feedback on the service's own notices (``issued_notices``), read as the feedback writer reads a
card: a notice is no rule's card, offers no suggestion and names no patient, so feedback on one
silences nothing and is stored with neither rule nor patient, as before; known, it is no longer
said to name a card this service has no record of."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Connection, String, literal, null, select

from cds_service.storage.schema import issued_notices


def notices_named(connection: Connection, uuids: Collection[str]) -> dict[str, Any]:
    """The notices among ``uuids``, by uuid, with the columns of a card the writer reads."""
    if not uuids:
        return {}
    query = select(
        issued_notices.c.uuid,
        issued_notices.c.service_id,
        null().label("rule_id"),
        null().label("patient_key"),
        literal("[]", String).label("suggestions"),  # none offered: an acceptance naming one is refused
        issued_notices.c.issuer,
        issued_notices.c.tenant,
    ).where(issued_notices.c.uuid.in_(uuids))
    return {row.uuid: row for row in connection.execute(query)}
