"""The versioned model registry in a tenant's storage.

Layout under `tenants/<tenant>/models/recommendation/`:
  versions/<version>/weights.npz       factors (numpy, loaded without pickle)
  versions/<version>/listeners.parquet index -> listener id
  versions/<version>/tracks.parquet    index -> track uri
  versions/<version>/seen.parquet      (listener, track) index pairs the model trained on (never recommended)
  versions/<version>/loss_curve.png
  versions/<version>/manifest.json     config, data window, dataset fingerprint, code version, training stats;
                                       written last: a version exists once its manifest does
  versions/<version>/evaluation.json   hold-out metrics against the baseline (written once)
  candidate.json                       the newest trained version, not yet vetted
  latest.json                          the promoted version recommendations are served from

Nothing under a version is ever overwritten. `latest` moves only to a version whose evaluation beats the
baseline.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from spotify_jobs.storage.tenant_storage import TenantStorage
from spotify_jobs.training.evaluation import Evaluation
from spotify_jobs.training.progress import Factors
from spotify_jobs.training.scoring import SeenItems, top_k

MODEL_NAME = "recommendation"
_VERSION = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{12}$")


class RegistryError(RuntimeError):
    """A registry operation that would break its guarantees, or a version that does not exist."""


@dataclass(frozen=True)
class ModelVersion:
    """Everything needed to serve a model: factors, id maps, what it must not recommend, and its manifest."""

    factors: Factors
    listener_ids: np.ndarray
    track_uris: np.ndarray
    seen_users: np.ndarray
    seen_items: np.ndarray
    manifest: dict

    def recommend(self, k: int) -> pd.DataFrame:
        """Top-`k` unseen tracks per listener: listener_id, rank (1 = best), track_uri, score."""
        users = np.arange(len(self.listener_ids))
        seen = SeenItems(self.seen_users, self.seen_items, len(users))
        items, scores = top_k(self.factors, users, seen, k)
        keep = np.isfinite(scores)
        rows, cols = np.nonzero(keep)
        return pd.DataFrame(
            {
                "listener_id": pd.array(self.listener_ids[users[rows]], dtype="string"),
                "rank": (cols + 1).astype("int64"),
                "track_uri": pd.array(self.track_uris[items[keep]], dtype="string"),
                "score": scores[keep].astype("float64"),
            }
        )


def _npz_bytes(factors: Factors) -> bytes:
    buffer = io.BytesIO()
    np.savez(
        buffer,
        user_factors=factors.user_factors,
        item_factors=factors.item_factors,
        item_bias=factors.item_bias,
    )
    return buffer.getvalue()


class ModelRegistry:
    """One tenant's versions of one model."""

    def __init__(self, storage: TenantStorage, name: str = MODEL_NAME):
        self.storage = storage
        self.prefix = f"models/{name}"
        storage.key(self.prefix)  # validate the name before any I/O

    def _version_part(self, version: str, file: str) -> str:
        if not isinstance(version, str) or not _VERSION.match(version):
            raise RegistryError(f"{version!r} is not a model version id (YYYYMMDDTHHMMSSZ-<12 hex>)")
        return f"{self.prefix}/versions/{version}/{file}"

    def uri(self, version: str, file: str = "manifest.json") -> str:
        """Where one file of a version lies (for links in the UI)."""
        return self.storage.uri(self._version_part(version, file))

    def exists(self, version: str) -> bool:
        return self.storage.exists(self._version_part(version, "manifest.json"))

    def publish(self, version: ModelVersion, loss_curve_png: bytes | None = None) -> str:
        """Store `version` under a new immutable id (UTC time + content hash) and make it the candidate."""
        weights = _npz_bytes(version.factors)
        digest = hashlib.sha256(
            weights + str(version.manifest.get("dataset_fingerprint")).encode()
        ).hexdigest()
        created = datetime.now(UTC)
        version_id = f"{created:%Y%m%dT%H%M%SZ}-{digest[:12]}"
        if self.storage.exists(self._version_part(version_id, "manifest.json")):
            raise RegistryError(f"model version {version_id} already exists; versions are immutable")
        files = {
            "weights.npz": weights,
            "listeners.parquet": pd.DataFrame(
                {"listener_id": pd.array(version.listener_ids, dtype="string")}
            ),
            "tracks.parquet": pd.DataFrame({"track_uri": pd.array(version.track_uris, dtype="string")}),
            "seen.parquet": pd.DataFrame(
                {"listener": version.seen_users.astype("int32"), "track": version.seen_items.astype("int32")}
            ),
        }
        if loss_curve_png is not None:
            files["loss_curve.png"] = loss_curve_png
        for file, content in files.items():
            part = self._version_part(version_id, file)
            if isinstance(content, pd.DataFrame):
                self.storage.write_parquet(content, part)
            else:
                self.storage.write_bytes(content, part)
        manifest = {**version.manifest, "version": version_id, "created_at": created.isoformat()}
        self.storage.write_json(manifest, self._version_part(version_id, "manifest.json"))
        self.storage.write_json({"version": version_id}, self.prefix, "candidate.json")
        return version_id

    def load(self, version: str) -> ModelVersion:
        """Read a version back; its recommendations are those it was published with."""
        if not self.exists(version):
            raise RegistryError(f"model version {version} does not exist in {self.storage.uri(self.prefix)}")
        with np.load(io.BytesIO(self.storage.read_bytes(self._version_part(version, "weights.npz")))) as npz:
            factors = Factors(npz["user_factors"], npz["item_factors"], npz["item_bias"])
        seen = self.storage.read_parquet(self._version_part(version, "seen.parquet"))
        return ModelVersion(
            factors=factors,
            listener_ids=self._ids(version, "listeners.parquet", "listener_id"),
            track_uris=self._ids(version, "tracks.parquet", "track_uri"),
            seen_users=seen["listener"].to_numpy(np.int64),
            seen_items=seen["track"].to_numpy(np.int64),
            manifest=self.manifest(version),
        )

    def _ids(self, version: str, file: str, column: str) -> np.ndarray:
        return self.storage.read_parquet(self._version_part(version, file))[column].to_numpy(object)

    def manifest(self, version: str) -> dict:
        return self.storage.read_json(self._version_part(version, "manifest.json"))

    def versions(self) -> list[str]:
        """Published versions, oldest first."""
        found = set()
        for info in self.storage.list(self.prefix, "versions"):
            parts = info.key.split("/")
            if parts[-1] == "manifest.json":
                found.add(parts[-2])
        return sorted(found)

    def record_evaluation(self, version: str, evaluation: Evaluation) -> None:
        """Attach the hold-out evaluation to `version`; a version is evaluated once."""
        part = self._version_part(version, "evaluation.json")
        if not self.exists(version):
            raise RegistryError(f"cannot evaluate model version {version}: it does not exist")
        if self.storage.exists(part):
            if Evaluation.from_dict(self.storage.read_json(part)) == evaluation:
                return
            raise RegistryError(
                f"model version {version} already has a different evaluation; versions are immutable"
            )
        self.storage.write_json(evaluation.to_dict(), part)

    def evaluation(self, version: str) -> Evaluation | None:
        part = self._version_part(version, "evaluation.json")
        return Evaluation.from_dict(self.storage.read_json(part)) if self.storage.exists(part) else None

    def _pointer(self, name: str) -> str | None:
        if not self.storage.exists(self.prefix, name):
            return None
        return self.storage.read_json(self.prefix, name)["version"]

    def candidate(self) -> str | None:
        """The newest published version, vetted or not."""
        return self._pointer("candidate.json")

    def latest(self) -> str | None:
        """The promoted version; None before the first promotion."""
        return self._pointer("latest.json")

    def require_promotable(self, version: str) -> Evaluation:
        """The evaluation of `version` if it beats the baseline; RegistryError saying why not otherwise."""
        evaluation = self.evaluation(version)
        if evaluation is None:
            raise RegistryError(f"cannot promote model version {version}: it has not been evaluated")
        if not evaluation.beats_baseline:
            raise RegistryError(
                f"cannot promote model version {version}: "
                f"recall@{evaluation.k} {evaluation.model.recall:.4f} / "
                f"NDCG {evaluation.model.ndcg:.4f} do not beat popularity's "
                f"{evaluation.popularity.recall:.4f} / {evaluation.popularity.ndcg:.4f}"
            )
        return evaluation

    def promote(self, version: str) -> str | None:
        """Point `latest` at `version` if its evaluation beats the baseline; returns the previous latest."""
        self.require_promotable(version)
        previous = self.latest()
        self.storage.write_json(
            {"version": version, "previous": previous, "promoted_at": datetime.now(UTC).isoformat()},
            self.prefix,
            "latest.json",
        )
        return previous
