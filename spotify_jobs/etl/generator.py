"""Deterministic generator of Spotify "Extended Streaming History" exports (demo data, tests, benchmarks).

Writes what a tenant would deliver for one landing date: one folder per listener export under
`landing/<date>/<export-id>/`, each holding `Streaming_History_Audio_<years>_<n>.json` files (one JSON
array each, at most `max_file_bytes`), through TenantStorage so a local directory and S3 work alike.

What the data looks like (see the format spec): Zipf track popularity over `spotify:track:` + 22 base-62
URIs, ~5 % podcast episodes, audiobooks in the `new` variant, skips, shuffle, offline and incognito plays,
ms_played that follow the reason a stream ended, and a field order that differs from export to export.
Variants: `new` exports carry `ip_addr` and the `audiobook_*` fields; `legacy` exports carry
`ip_addr_decrypted` and `user_agent_decrypted`, `skipped` is often null, and a third of them have no
`username` field at all. On top of the clean records come a configurable share of exact duplicates and of
malformed records (every per-record quarantine reason, in turn) and, when malformed records are asked for,
one truncated file per landing date (`file_unreadable`).

The same (records, seed, variant, shares) always give byte-identical files.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import msgspec
import numpy as np

from spotify_jobs.etl.schema import landing_prefix
from spotify_jobs.storage.tenant_storage import TenantStorage

Variant = Literal["new", "legacy"]
VARIANTS: tuple[str, ...] = ("new", "legacy")
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
MAX_FILE_BYTES = 12_000_000
# Per-record quarantine reasons the generator produces, in the order the ETL checks them.
MALFORMED_REASONS = ("missing_listener", "bad_ts", "bad_ms_played", "bad_track_uri", "no_content")

NEW_FIELDS = (
    "ts", "username", "platform", "ms_played", "conn_country", "ip_addr",
    "master_metadata_track_name", "master_metadata_album_artist_name", "master_metadata_album_album_name",
    "spotify_track_uri", "episode_name", "episode_show_name", "spotify_episode_uri",
    "audiobook_title", "audiobook_uri", "audiobook_chapter_uri", "audiobook_chapter_title",
    "reason_start", "reason_end", "shuffle", "skipped", "offline", "offline_timestamp", "incognito_mode",
)  # fmt: skip
LEGACY_FIELDS = (
    "ts", "username", "platform", "ms_played", "conn_country", "ip_addr_decrypted", "user_agent_decrypted",
    "master_metadata_track_name", "master_metadata_album_artist_name", "master_metadata_album_album_name",
    "spotify_track_uri", "episode_name", "episode_show_name", "spotify_episode_uri",
    "reason_start", "reason_end", "shuffle", "skipped", "offline", "offline_timestamp", "incognito_mode",
)  # fmt: skip

_WORDS = (
    "Midnight", "City", "Lights", "Echo", "Summer", "Rain", "Golden", "Hour", "Blue", "Velvet", "Fire",
    "Ocean", "Dream", "Wild", "Heart", "Neon", "Silver", "River", "Paper", "Moon", "Electric", "Shadow",
    "Sugar", "Winter", "Glass", "Honey", "Static", "Ghost", "Cherry", "Thunder", "Satellite", "Coastline",
    "Lonely", "Dance", "Stars", "Highway", "Northern", "Sky", "Garden", "Signal", "Fever", "Bloom",
)  # fmt: skip
_SHOW_WORDS = ("Daily", "Weekly", "Tech", "Crime", "History", "Science", "Music", "Football", "Money", "Talk")
_PLATFORMS = (
    "iOS 17.1.2 (iPhone15,2)", "iOS 13.4 (iPhone11,8)", "Android OS 13 API 33 (Google, Pixel 7)",
    "Android OS 4.2.2 API 17 (samsung, GT-I9195)", "Windows 10 (10.0.19045; x64)", "OS X 14.1.1 [arm 2]",
    "web_player windows 10;chrome 119.0.0.0;desktop", "Partner sonos_speaker Sonos Play:1",
    "Android-tablet OS 12 API 31 (samsung, SM-X200)", "Linux [x86-64 0]",
)  # fmt: skip
_COUNTRIES = ("SE", "US", "GB", "DE", "FR", "BR", "MX", "ES", "NL", "JP", "IN", "AU", "CA", "PL", "IT")
_REASON_START = ("clickrow", "fwdbtn", "backbtn", "playbtn", "appload", "remote", "trackerror")
_USER_AGENTS = ("Spotify/8.5.60 iOS/13.4 (iPhone11,8)", "Spotify/109800078 OSX/0 (MacBookPro15,1)", "unknown")


@dataclass(frozen=True)
class GenerationConfig:
    """What to generate. `records` counts the records of the readable files (clean + duplicates + malformed)."""

    records: int
    seed: int = 0
    variant: Variant = "new"
    duplicate_share: float = 0.005
    malformed_share: float = 0.002
    podcast_share: float = 0.05
    audiobook_share: float = 0.01  # new variant only
    mean_records_per_export: int = 4000
    history_days: int = 30
    max_file_bytes: int = MAX_FILE_BYTES

    def __post_init__(self) -> None:
        if self.records < 1:
            raise ValueError(f"records must be at least 1, got {self.records}")
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {self.variant!r}")
        for name in ("duplicate_share", "malformed_share", "podcast_share", "audiobook_share"):
            value = getattr(self, name)
            if not 0 <= value < 0.5:
                raise ValueError(f"{name} must be in [0, 0.5), got {value}")
        if self.mean_records_per_export < 1 or self.history_days < 1:
            raise ValueError("mean_records_per_export and history_days must be at least 1")
        if self.max_file_bytes < 10_000:
            raise ValueError(f"max_file_bytes must be at least 10000, got {self.max_file_bytes}")

    @property
    def duplicates(self) -> int:
        return round(self.records * self.duplicate_share)

    @property
    def malformed(self) -> int:
        return round(self.records * self.malformed_share)

    @property
    def unreadable_files(self) -> int:
        return 1 if self.malformed_share > 0 else 0


@dataclass
class GenerationReport:
    """What the generator wrote; `records_in` is what the ETL must count (an unreadable file counts once)."""

    tenant: str
    date: str
    variant: str
    seed: int
    records: int = 0
    duplicates: int = 0
    malformed: dict[str, int] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)  # files that are not a readable JSON array
    content: dict[str, int] = field(default_factory=dict)
    exports: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    bytes_written: int = 0

    @property
    def unreadable_files(self) -> int:
        return len(self.unreadable)

    @property
    def records_in(self) -> int:
        return self.records + self.unreadable_files

    @property
    def clean(self) -> int:
        return self.records - self.duplicates - sum(self.malformed.values())

    def as_dict(self) -> dict[str, object]:
        return {
            "tenant": self.tenant,
            "date": self.date,
            "variant": self.variant,
            "seed": self.seed,
            "records": self.records,
            "records_in": self.records_in,
            "clean": self.clean,
            "duplicates": self.duplicates,
            "malformed": dict(self.malformed),
            "unreadable_files": self.unreadable,
            "content": dict(self.content),
            "exports": len(self.exports),
            "files": len(self.files),
            "bytes_written": self.bytes_written,
        }


class LandingNotEmpty(ValueError):
    """The landing folder already holds files and replacing them was not asked for."""


def base62_ids(rng: np.random.Generator, count: int, length: int = 22) -> list[str]:
    """`count` random base-62 strings of `length` characters (the id part of a Spotify URI)."""
    chars = np.array(list(BASE62), dtype="<U1")[rng.integers(0, 62, size=(count, length))]
    return chars.view(f"<U{length}").ravel().tolist()


def _names(rng: np.random.Generator, count: int, words: int = 2) -> list[str]:
    picks = rng.integers(0, len(_WORDS), size=(count, words))
    return [" ".join(_WORDS[i] for i in row) for row in picks.tolist()]


@dataclass(frozen=True)
class _Catalogue:
    track_uri: list[str]
    track_name: list[str]
    artist: list[str]
    album: list[str]
    duration_ms: np.ndarray
    track_p: np.ndarray
    episode_uri: list[str]
    episode_name: list[str]
    show_name: list[str]
    episode_p: np.ndarray
    book_uri: list[str]
    book_title: list[str]
    chapter_uri: list[list[str]]


def _catalogue(config: GenerationConfig) -> _Catalogue:
    rng = np.random.default_rng([config.seed, 0xCA7])
    n_tracks = int(min(100_000, max(200, config.records // 20)))
    n_artists = max(20, n_tracks // 12)
    n_albums = max(40, n_tracks // 5)
    artists = [f"The {n}" if i % 3 == 0 else n for i, n in enumerate(_names(rng, n_artists))]
    album_artist = rng.integers(0, n_artists, size=n_albums)
    album_names = _names(rng, n_albums)
    track_album = rng.integers(0, n_albums, size=n_tracks)
    ranks = np.arange(1, n_tracks + 1, dtype=np.float64)
    popularity = ranks**-1.07
    n_episodes = max(20, n_tracks // 20)
    shows = [
        f"The {w} {n}"
        for w, n in zip(
            rng.choice(_SHOW_WORDS, n_episodes // 10 + 1), _names(rng, n_episodes // 10 + 1, 1), strict=True
        )
    ]
    n_books = 40
    return _Catalogue(
        track_uri=[f"spotify:track:{i}" for i in base62_ids(rng, n_tracks)],
        track_name=_names(rng, n_tracks, 3),
        artist=[artists[album_artist[a]] for a in track_album.tolist()],
        album=[album_names[a] for a in track_album.tolist()],
        duration_ms=np.clip(rng.lognormal(np.log(210_000), 0.3, n_tracks), 60_000, 900_000).astype(np.int64),
        track_p=popularity / popularity.sum(),
        episode_uri=[f"spotify:episode:{i}" for i in base62_ids(rng, n_episodes)],
        episode_name=[f"Episode {k + 1}: {n}" for k, n in enumerate(_names(rng, n_episodes))],
        show_name=[shows[k % len(shows)] for k in range(n_episodes)],
        episode_p=(ranks[:n_episodes] ** -0.9) / (ranks[:n_episodes] ** -0.9).sum(),
        book_uri=[f"spotify:audiobook:{i}" for i in base62_ids(rng, n_books)],
        book_title=_names(rng, n_books, 3),
        chapter_uri=[[f"spotify:chapter:{i}" for i in base62_ids(rng, 12)] for _ in range(n_books)],
    )


def _export_sizes(config: GenerationConfig, rng: np.random.Generator) -> np.ndarray:
    """Records per export (clean + malformed, before duplicates): a skewed split of the total."""
    base = config.records - config.duplicates
    n_exports = max(1, min(base, round(base / config.mean_records_per_export)))
    weights = rng.lognormal(0.0, 0.8, n_exports)
    sizes = rng.multinomial(base - n_exports, weights / weights.sum()) + 1
    return sizes


def _ip_address(rng: np.random.Generator) -> str:
    if rng.random() < 0.2:
        return ":".join(f"{int(x):x}" for x in rng.integers(0, 0xFFFF, 8))
    octets = rng.integers(1, 255, 4).tolist()
    if rng.random() < 0.15:
        return f"{octets[0]}.{octets[1]}.{octets[2]}.x"
    return ".".join(str(o) for o in octets)


def _timestamps(rng: np.random.Generator, count: int, end: int, window_s: int) -> np.ndarray:
    """`count` distinct, sorted epoch seconds in [end - window_s, end)."""
    if count > window_s:
        raise ValueError(f"cannot place {count} streams of one listener in {window_s} s; raise history_days")
    chosen = np.unique(rng.integers(end - window_s, end, size=count))
    while len(chosen) < count:
        chosen = np.unique(
            np.concatenate([chosen, rng.integers(end - window_s, end, size=count - len(chosen))])
        )
    return chosen


def _content_type(rec: dict) -> str:
    if rec.get("spotify_track_uri"):
        return "music"
    return "podcast" if rec.get("spotify_episode_uri") else "audiobook"


def _export_records(config: GenerationConfig, cat: _Catalogue, index: int, size: int, end: int) -> list[dict]:
    """The clean records of one export, oldest first; every record's keys follow the export's field order."""
    rng = np.random.default_rng([config.seed, 0xE7, index])
    legacy = config.variant == "legacy"
    fields = list(LEGACY_FIELDS if legacy else NEW_FIELDS)
    has_username = not legacy or rng.random() < 2 / 3
    if not has_username:
        fields.remove("username")
    order = [fields[i] for i in rng.permutation(len(fields))]
    if rng.random() < 0.5:
        username = base62_ids(rng, 1, 25)[0].lower()
    else:  # name-like usernames, made unique by the export index
        username = f"{_names(rng, 1, 1)[0].lower()}{index * 100 + int(rng.integers(100))}"
    ip = _ip_address(rng)
    devices = [
        _PLATFORMS[i] for i in rng.choice(len(_PLATFORMS), size=int(rng.integers(1, 4)), replace=False)
    ]
    country = _COUNTRIES[int(rng.integers(len(_COUNTRIES)))]
    p_shuffle = float(rng.beta(2, 3))
    p_incognito = 0.02 if rng.random() < 0.3 else 0.0

    end_s = _timestamps(rng, size, end, config.history_days * 86_400)
    ts_text = (np.datetime_as_string(end_s.astype("datetime64[s]"), unit="s").astype(object) + "Z").tolist()
    kind = rng.random(size)
    audiobook_share = 0.0 if legacy else config.audiobook_share
    is_episode = (kind < config.podcast_share).tolist()
    is_book = ((kind >= config.podcast_share) & (kind < config.podcast_share + audiobook_share)).tolist()
    track = rng.choice(len(cat.track_uri), size=size, p=cat.track_p).tolist()
    episode = rng.choice(len(cat.episode_uri), size=size, p=cat.episode_p).tolist()
    book = rng.integers(0, len(cat.book_uri), size=size).tolist()
    skipped = (rng.random(size) < 0.22).tolist()
    end_roll = rng.random(size).tolist()
    partial = rng.random(size).tolist()
    device = rng.integers(0, len(devices), size=size).tolist()
    shuffle = (rng.random(size) < p_shuffle).tolist()
    offline = (rng.random(size) < 0.05).tolist()
    incognito = (rng.random(size) < p_incognito).tolist()
    null_skip = (rng.random(size) < 0.6).tolist()
    travel = (rng.random(size) < 0.01).tolist()
    agent = rng.integers(-1, len(_USER_AGENTS), size=size).tolist()
    start_reason = rng.integers(0, len(_REASON_START), size=size).tolist()
    durations = cat.duration_ms.tolist()
    end_list = end_s.tolist()

    records: list[dict] = []
    previous_end = "trackdone"
    for i in range(size):
        rec: dict = dict.fromkeys(order)
        if is_episode[i] or is_book[i]:
            ms = int(30_000 + partial[i] * 3_570_000)
            reason_end = "endplay" if end_roll[i] < 0.6 else "trackdone"
            skip = False
        else:
            duration = durations[track[i]]
            skip = skipped[i]
            if skip:
                ms = int(partial[i] * min(duration, 40_000))
                reason_end = "fwdbtn" if end_roll[i] < 0.85 else "backbtn"
            elif end_roll[i] < 0.8:
                ms, reason_end = duration, "trackdone"
            else:
                ms = int(partial[i] * duration)
                reason_end = ("endplay", "logout", "unexpected-exit", "remote")[int(end_roll[i] * 20) % 4]
        if is_episode[i]:
            e = episode[i]
            rec["episode_name"], rec["episode_show_name"] = cat.episode_name[e], cat.show_name[e]
            rec["spotify_episode_uri"] = cat.episode_uri[e]
        elif is_book[i]:
            b = book[i]
            chapter = int(partial[i] * len(cat.chapter_uri[b]))
            rec["audiobook_title"], rec["audiobook_uri"] = cat.book_title[b], cat.book_uri[b]
            rec["audiobook_chapter_uri"] = cat.chapter_uri[b][chapter]
            rec["audiobook_chapter_title"] = f"Chapter {chapter + 1}"
        else:
            t = track[i]
            rec["master_metadata_track_name"] = cat.track_name[t]
            rec["master_metadata_album_artist_name"] = cat.artist[t]
            rec["master_metadata_album_album_name"] = cat.album[t]
            rec["spotify_track_uri"] = cat.track_uri[t]
        rec["ts"] = ts_text[i]
        if has_username:
            rec["username"] = username
        rec["platform"] = devices[device[i]]
        rec["ms_played"] = ms
        rec["conn_country"] = _COUNTRIES[(i + index) % len(_COUNTRIES)] if travel[i] else country
        rec["reason_start"] = "trackdone" if previous_end == "trackdone" else _REASON_START[start_reason[i]]
        rec["reason_end"] = previous_end = reason_end
        rec["shuffle"] = shuffle[i]
        rec["skipped"] = None if legacy and null_skip[i] else skip
        rec["offline"] = offline[i]
        rec["incognito_mode"] = incognito[i]
        start_s = end_list[i] - ms // 1000
        if legacy:
            rec["ip_addr_decrypted"] = ip
            rec["user_agent_decrypted"] = _USER_AGENTS[agent[i]] if agent[i] >= 0 else None
            rec["offline_timestamp"] = start_s if offline[i] else None
        else:
            rec["ip_addr"] = ip
            rec["offline_timestamp"] = start_s * 1000
        records.append(rec)
    return records


def _corrupt(rec: dict, reason: str, variant_roll: int) -> None:
    """Turn a clean record into one that fails exactly `reason` (and no earlier check)."""
    if reason == "missing_listener":
        rec["username"] = (12345, ["not", "a", "name"], {"id": 7})[variant_roll % 3]
    elif reason == "bad_ts":
        bad = (None, "yesterday", "2026-02-30T10:00:00Z", 1_700_000_000, "")[variant_roll % 5]
        if bad is None and variant_roll % 2:
            del rec["ts"]
        else:
            rec["ts"] = bad
    elif reason == "bad_ms_played":
        bad = (-1, "183000", 12.5, None, True)[variant_roll % 5]
        if bad is None and variant_roll % 2:
            del rec["ms_played"]
        else:
            rec["ms_played"] = bad
    elif reason == "bad_track_uri":
        uri = rec["spotify_track_uri"]
        rec["spotify_track_uri"] = (uri[:-1], uri[:-1] + "!", "spotify:album:" + uri[14:], uri + "x")[
            variant_roll % 4
        ]
    elif reason == "no_content":
        for key in ("spotify_track_uri", "spotify_episode_uri", "audiobook_uri"):
            if key in rec:
                rec[key] = None


def _files_of(records: list[bytes], years: list[int], max_bytes: int) -> list[tuple[str, bytes]]:
    """Split encoded records into files of at most `max_bytes`, named by the years they cover."""
    files: list[tuple[str, bytes]] = []
    chunk: list[bytes] = []
    chunk_years: list[int] = []
    size = 4

    def flush() -> None:
        low, high = min(chunk_years), max(chunk_years)
        span = str(low) if low == high else f"{low}-{high}"
        files.append(
            (f"Streaming_History_Audio_{span}_{len(files)}.json", b"[\n" + b",\n".join(chunk) + b"\n]")
        )

    for encoded, year in zip(records, years, strict=True):
        if chunk and size + len(encoded) + 2 > max_bytes:
            flush()
            chunk, chunk_years, size = [], [], 4
        chunk.append(encoded)
        chunk_years.append(year)
        size += len(encoded) + 2
    if chunk:
        flush()
    return files


def generate_exports(
    storage: TenantStorage, date: str, config: GenerationConfig, *, replace: bool = False
) -> GenerationReport:
    """Write one landing date's exports for `storage`'s tenant; return what was written.

    Refuses (LandingNotEmpty) when the landing folder already holds files, unless `replace` is true, in which
    case they are deleted first so the folder holds exactly this generation.
    """
    day = dt.date.fromisoformat(date)
    prefix = landing_prefix(day.isoformat())
    existing = next(iter(storage.list(prefix)), None)
    if existing is not None:
        if not replace:
            raise LandingNotEmpty(
                f"{storage.uri(prefix)} already holds files (e.g. {existing.key}); pass replace"
            )
        storage.delete_prefix(prefix)

    cat = _catalogue(config)
    rng = np.random.default_rng([config.seed, 0x5EED])
    sizes = _export_sizes(config, rng)
    # Which exports get the duplicates and malformed records, proportional to their size.
    dup_per_export = rng.multinomial(config.duplicates, sizes / sizes.sum())
    bad_per_export = rng.multinomial(config.malformed, sizes / sizes.sum())
    bad_per_export = np.minimum(bad_per_export, sizes)
    unreadable_export = int(rng.integers(len(sizes))) if config.unreadable_files else -1
    end = int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp())
    report = GenerationReport(
        tenant=storage.tenant_id, date=day.isoformat(), variant=config.variant, seed=config.seed
    )
    malformed: Counter = Counter()
    content: Counter = Counter()
    encoder = msgspec.json.Encoder()
    reason_turn = 0

    for index, size in enumerate(sizes.tolist()):
        export_id = (
            f"export-{base62_ids(np.random.default_rng([config.seed, 0x1D, index]), 1, 12)[0].lower()}"
        )
        records = _export_records(config, cat, index, size, end)
        erng = np.random.default_rng([config.seed, 0xBAD, index])
        candidates = erng.permutation(len(records)).tolist()
        bad_rows: set[int] = set()
        for _ in range(int(bad_per_export[index])):
            reason = MALFORMED_REASONS[reason_turn % len(MALFORMED_REASONS)]
            reason_turn += 1
            fits = (
                [r for r in candidates if records[r].get("spotify_track_uri")]
                if reason == "bad_track_uri"
                else []
            )
            if reason == "bad_track_uri" and not fits:
                reason = "no_content"  # an export without music left cannot hold a bad track URI
            row = fits[0] if fits else candidates[0]
            candidates.remove(row)
            _corrupt(records[row], reason, int(erng.integers(1000)))
            bad_rows.add(row)
            malformed[reason] += 1
        clean_rows = [i for i in range(len(records)) if i not in bad_rows]
        content.update(_content_type(records[i]) for i in clean_rows)
        n_dups = min(int(dup_per_export[index]), len(clean_rows))
        # Each duplicate is an exact copy of a clean record, placed somewhere after it in the same export.
        for src in sorted(erng.choice(clean_rows, size=n_dups, replace=False).tolist(), reverse=True):
            records.insert(int(erng.integers(src + 1, len(records) + 1)), dict(records[src]))
        report.duplicates += n_dups

        years = []
        encoded = []
        for rec in records:
            ts = rec.get("ts")
            years.append(int(ts[:4]) if isinstance(ts, str) and ts[:4].isdigit() else day.year)
            encoded.append(encoder.encode(rec))
        files = _files_of(encoded, years, config.max_file_bytes)
        if index == unreadable_export:
            # A delivery cut short: the first half of a valid array, never closed.
            whole = b"[\n" + b",\n".join(encoded[: max(1, len(encoded) // 4)]) + b"\n]"
            name = f"Streaming_History_Audio_{day.year}_{len(files)}.json"
            files.append((name, whole[: len(whole) // 2]))
            report.unreadable.append(f"{export_id}/{name}")
        for name, data in files:
            storage.write_bytes(data, prefix, export_id, name)
            report.files.append(f"{export_id}/{name}")
            report.bytes_written += len(data)
        report.records += len(records)
        report.exports.append(export_id)

    report.malformed = {reason: malformed[reason] for reason in MALFORMED_REASONS if malformed[reason]}
    report.content = dict(content)
    return report
