"""The ``callbacks`` settings section: which optional callback families this CyberApp serves."""

from __future__ import annotations

import re
from dataclasses import dataclass

_ORG_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z-]{0,35}")


@dataclass(frozen=True, slots=True)
class CallbacksSettings:
    """Optional callback families: mirrored enablement (CyberApp v2) and where its partners go."""

    # Mirrored enablement (CyberApp v2, the five partner/customer.mirroring callbacks). Off: they are
    # unknown callbacks (400 after authentication), as before.
    mirroring: bool = False
    # The vendor organization (its id) under which the partner orgs mirrored for Acronis partners are
    # created; required with mirroring (bootstrap's root partner is the usual choice).
    mirrored_partners_parent: str = ""

    def __post_init__(self) -> None:
        if self.mirrored_partners_parent and not _ORG_ID.fullmatch(self.mirrored_partners_parent):
            raise ValueError("mirrored_partners_parent: must be an organization id")
        if self.mirroring and not self.mirrored_partners_parent:
            raise ValueError(
                "mirrored_partners_parent: required with mirroring on (the id of the vendor organization "
                "mirrored partners go under, e.g. the root partner `connector init` created)"
            )
