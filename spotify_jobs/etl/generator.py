"""Deterministic generator of Spotify "Extended Streaming History" exports (demo data, tests, benchmarks).

Writes what a tenant would deliver for one landing date: one folder per listener export under
`landing/<date>/<export-id>/`, each holding `Streaming_History_Audio_<years>_<n>.json` files (one JSON
array each, at most `max_file_bytes`), through TenantStorage so a local directory and S3 work alike.

What the data looks like (see the format spec): one export is one listener's last `history_days` days up to
the landing date, in sessions of back-to-back plays; listeners' activity is heavy-tailed (lognormal around
`mean_records_per_export`), so 20,000 records are ~130 listeners. Tracks (`spotify:track:` + 22 base-62)
belong to artists and genres and have a global Zipf popularity. Each listener likes one or two genres and mostly
discovers tracks there, sometimes digs into an artist they played or follows the charts, and replays
favourites, so listening has the taste structure a recommender learns from (and a time-based hold-out of
the last days holds discoveries to predict). Around it: ~5 % podcast episodes (mostly the listener's own
shows), audiobooks read chapter by chapter in the `new` variant, skips (rare for favourites, common for
chart picks), shuffle, offline and incognito plays, ms_played that follow the reason a stream ended, and a
field order that differs from export to export.
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
from collections.abc import Iterable
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
# Streams per listener export over `history_days` (one export is one listener's history), on average.
MEAN_RECORDS_PER_EXPORT = 150
ACTIVITY_SIGMA = 1.0  # lognormal spread of activity: median ~0.6x the mean, the heaviest of 100+ ~15x
MAX_STREAMS_PER_DAY = 150  # no listener plays more (~9 h of music a day)
SESSION_MEAN_STREAMS = 8
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
_COUNTRIES = np.array(
    ("SE", "US", "GB", "DE", "FR", "BR", "MX", "ES", "NL", "JP", "IN", "AU", "CA", "PL", "IT"), dtype=object
)
_REASON_START = np.array(("clickrow", "fwdbtn", "backbtn", "playbtn", "appload", "remote", "trackerror"))
_SESSION_START = np.array(("clickrow", "playbtn", "appload", "remote"))
_CHAPTERS = 12  # per audiobook
_CHAPTER_TITLES = np.array([f"Chapter {c + 1}" for c in range(_CHAPTERS)], dtype=object)
_CONTINUED = ("trackdone", "fwdbtn", "backbtn")  # a play that ended so starts the next one the same way
_INTERRUPTED = np.array(("endplay", "logout", "unexpected-exit", "remote"))
# How a listener's next track is chosen (see _music), and how often a track found that way is skipped.
_REPLAY, _ARTIST, _CHARTS, _GENRE = 0, 1, 2, 3
_P_ARTIST, _P_CHARTS = 0.15, 0.08  # shares of the plays that are not replays; the rest: liked genres
_SKIP_P = np.array([0.08, 0.2, 0.4, 0.22])
# Discovery within a liked genre is less top-heavy than the charts (Zipf exponent 0.75 instead of 1.07).
_GENRE_ZIPF = 0.7
_USER_AGENTS = np.array(
    ("Spotify/8.5.60 iOS/13.4 (iPhone11,8)", "Spotify/109800078 OSX/0 (MacBookPro15,1)", "unknown"),
    dtype=object,
)


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
    mean_records_per_export: int = MEAN_RECORDS_PER_EXPORT
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
    """Tracks grouped genre > artist > album with a global Zipf popularity; podcast shows; audiobooks."""

    track_uri: np.ndarray  # strings (object arrays, indexed by track, episode, book, chapter)
    track_name: np.ndarray
    artist: np.ndarray
    album: np.ndarray
    duration_ms: np.ndarray
    track_artist: np.ndarray  # artist index of each track
    track_cdf: np.ndarray  # cumulative global popularity over all tracks (the charts)
    genre_p: np.ndarray  # how likely a listener is to like each genre
    genre_tracks: list[np.ndarray]  # the tracks of each genre ...
    genre_cdf: list[np.ndarray]  # ... and their cumulative popularity within the genre
    artist_tracks: list[np.ndarray]
    artist_cdf: list[np.ndarray]
    episode_uri: np.ndarray
    episode_name: np.ndarray
    show_name: np.ndarray
    shows: int  # episode e belongs to show e % shows
    episode_cdf: np.ndarray
    book_uri: np.ndarray
    book_title: np.ndarray
    chapter_uri: list[np.ndarray]


def _strings(values: Iterable[str]) -> np.ndarray:
    return np.array(list(values), dtype=object)


def _cdf(weights: np.ndarray) -> np.ndarray:
    total = np.cumsum(weights, dtype=np.float64)
    return total / total[-1]


def _draw(items: np.ndarray, cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Items drawn with the probabilities of `cdf`, one per uniform number in `u`."""
    return items[np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)]


def _groups(keys: np.ndarray, count: int) -> list[np.ndarray]:
    """Indices of `keys` grouped by key value 0..count-1."""
    order = np.argsort(keys, kind="stable")
    return np.split(order, np.cumsum(np.bincount(keys, minlength=count))[:-1])


def _catalogue(config: GenerationConfig) -> _Catalogue:
    rng = np.random.default_rng([config.seed, 0xCA7])
    n_tracks = int(min(100_000, max(200, config.records // 20)))
    n_genres = int(np.clip(round(np.sqrt(n_tracks) / 2), 6, 40))
    n_artists = max(20, n_tracks // 12)
    n_albums = max(40, n_tracks // 5)
    # Genres of different sizes; every genre has an artist, every artist an album, every album a track
    # (n_genres <= n_artists <= n_albums <= n_tracks).
    genre_size = np.arange(1, n_genres + 1, dtype=np.float64) ** -0.3
    artist_genre = np.concatenate(
        [np.arange(n_genres), rng.choice(n_genres, n_artists - n_genres, p=genre_size / genre_size.sum())]
    )
    album_artist = np.concatenate([np.arange(n_artists), rng.integers(0, n_artists, n_albums - n_artists)])
    track_album = np.concatenate([np.arange(n_albums), rng.integers(0, n_albums, n_tracks - n_albums)])
    track_artist = album_artist[track_album]
    track_genre = artist_genre[track_artist]
    ranks = np.arange(1, n_tracks + 1, dtype=np.float64)
    popularity = (ranks**-1.07)[rng.permutation(n_tracks)]
    genre_tracks = _groups(track_genre, n_genres)
    artist_tracks = _groups(track_artist, n_artists)
    # Big genres find more fans, but far less than in proportion to their plays: niches have devoted fans.
    genre_p = np.bincount(track_genre, weights=popularity, minlength=n_genres) ** 0.25

    artists = [f"The {n}" if i % 3 == 0 else n for i, n in enumerate(_names(rng, n_artists))]
    album_names = _names(rng, n_albums)
    n_episodes = max(20, n_tracks // 20)
    n_shows = n_episodes // 10 + 1
    shows = [
        f"The {w} {n}" for w, n in zip(rng.choice(_SHOW_WORDS, n_shows), _names(rng, n_shows, 1), strict=True)
    ]
    n_books = 40
    return _Catalogue(
        track_uri=_strings(f"spotify:track:{i}" for i in base62_ids(rng, n_tracks)),
        track_name=_strings(_names(rng, n_tracks, 3)),
        artist=_strings(artists)[track_artist],
        album=_strings(album_names)[track_album],
        duration_ms=np.clip(rng.lognormal(np.log(210_000), 0.3, n_tracks), 60_000, 900_000).astype(np.int64),
        track_artist=track_artist,
        track_cdf=_cdf(popularity),
        genre_p=genre_p / genre_p.sum(),
        genre_tracks=genre_tracks,
        genre_cdf=[_cdf(popularity[t] ** _GENRE_ZIPF) for t in genre_tracks],
        artist_tracks=artist_tracks,
        artist_cdf=[_cdf(popularity[t]) for t in artist_tracks],
        episode_uri=_strings(f"spotify:episode:{i}" for i in base62_ids(rng, n_episodes)),
        episode_name=_strings(f"Episode {k + 1}: {n}" for k, n in enumerate(_names(rng, n_episodes))),
        show_name=_strings(shows)[np.arange(n_episodes) % n_shows],
        shows=n_shows,
        episode_cdf=_cdf(ranks[:n_episodes] ** -0.9),
        book_uri=_strings(f"spotify:audiobook:{i}" for i in base62_ids(rng, n_books)),
        book_title=_strings(_names(rng, n_books, 3)),
        chapter_uri=[
            _strings(f"spotify:chapter:{i}" for i in base62_ids(rng, _CHAPTERS)) for _ in range(n_books)
        ],
    )


def _export_sizes(config: GenerationConfig, rng: np.random.Generator) -> np.ndarray:
    """Streams per export (clean + malformed, before duplicates): one export per listener, activity
    lognormal (a few heavy listeners, many light ones), none above MAX_STREAMS_PER_DAY a day."""
    base = config.records - config.duplicates
    cap = MAX_STREAMS_PER_DAY * config.history_days
    n_exports = max(1, min(base, round(base / config.mean_records_per_export)), -(-base // cap))
    weights = rng.lognormal(0.0, ACTIVITY_SIGMA, n_exports)
    sizes = rng.multinomial(base - n_exports, weights / weights.sum()) + 1
    while (over := np.maximum(sizes - cap, 0)).any():  # hand what exceeds the cap to listeners with room
        sizes -= over
        room = cap - sizes
        sizes += rng.multinomial(int(over.sum()), room / room.sum())
    return sizes


def _ip_address(rng: np.random.Generator) -> str:
    if rng.random() < 0.2:
        return ":".join(f"{int(x):x}" for x in rng.integers(0, 0xFFFF, 8))
    octets = rng.integers(1, 255, 4).tolist()
    if rng.random() < 0.15:
        return f"{octets[0]}.{octets[1]}.{octets[2]}.x"
    return ".".join(str(o) for o in octets)


def _where(mask: np.ndarray, values: np.ndarray) -> list:
    """`values` where `mask` holds, None elsewhere, as a list of Python objects (what the encoder takes)."""
    return np.where(mask, values, None).tolist()


def _content_type(rec: dict) -> str:
    if rec.get("spotify_track_uri"):
        return "music"
    return "podcast" if rec.get("spotify_episode_uri") else "audiobook"


def _music(cat: _Catalogue, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One listener's track for each of `size` plays (in time order), and how each was chosen (_REPLAY...).

    The listener likes one or two genres. A play replays an earlier one (a Pólya urn: the more a track was
    played, the likelier it comes back), goes deeper into the artist of an earlier play, follows the global
    charts, or (most often) discovers a track of a liked genre, by popularity within the genre.
    """
    liked = rng.choice(len(cat.genre_p), size=1 + int(rng.binomial(1, 0.5)), replace=False, p=cat.genre_p)
    genre_of = liked[rng.choice(len(liked), size=size, p=rng.dirichlet(np.full(len(liked), 1.5)))]
    p_replay = 0.5 * float(rng.beta(3.0, 3.0))
    roll = rng.random(size)
    fresh_roll = (roll - p_replay) / (1.0 - p_replay)
    mode = np.select(
        [roll < p_replay, fresh_roll < _P_ARTIST, fresh_roll < _P_ARTIST + _P_CHARTS],
        [_REPLAY, _ARTIST, _CHARTS],
        _GENRE,
    )
    u = rng.random(size)
    track = np.empty(size, dtype=np.int64)
    for g in liked.tolist():
        rows = genre_of == g
        track[rows] = _draw(cat.genre_tracks[g], cat.genre_cdf[g], u[rows])
    charts = mode == _CHARTS
    track[charts] = np.searchsorted(cat.track_cdf, u[charts], side="right").clip(max=len(cat.track_cdf) - 1)
    # Replays and artist picks follow earlier plays, so they are resolved in time order; a first play that
    # has nothing to follow keeps its genre pick.
    tracks, modes, earlier, us = track.tolist(), mode.tolist(), rng.random(size).tolist(), u.tolist()
    for i in range(1, size):
        if modes[i] == _REPLAY:
            tracks[i] = tracks[int(earlier[i] * i)]
        elif modes[i] == _ARTIST:
            artist = int(cat.track_artist[tracks[int(earlier[i] * i)]])
            choices, cdf = cat.artist_tracks[artist], cat.artist_cdf[artist]
            tracks[i] = int(choices[min(int(np.searchsorted(cdf, us[i], side="right")), len(cdf) - 1)])
    if size and mode[0] in (_REPLAY, _ARTIST):
        mode[0] = _GENRE
    return np.asarray(tracks, dtype=np.int64), mode


def _end_times(
    rng: np.random.Generator, ms_played: np.ndarray, end: int, window_s: int
) -> tuple[np.ndarray, np.ndarray]:
    """(end time in epoch seconds, starts a session) of each play: sessions of back-to-back plays, spread
    at random over [end - window_s, end); strictly increasing, so no two plays of a listener share a ts."""
    size = len(ms_played)
    steps = np.maximum(ms_played // 1000 + rng.integers(0, 4, size), 1)
    new_session = rng.random(size) < 1.0 / SESSION_MEAN_STREAMS
    new_session[:1] = True
    free = window_s - int(steps.sum()) - 1
    if free < 0:
        raise ValueError(
            f"cannot place {size} streams ({int(steps.sum())} s of listening) of one listener in "
            f"{window_s // 86_400} days; raise history_days"
        )
    idle = np.zeros(size, dtype=np.int64)
    idle[new_session] = np.diff(np.sort(rng.integers(0, free + 1, int(new_session.sum()))), prepend=0)
    return end - window_s + np.cumsum(steps + idle), new_session


def _export_records(config: GenerationConfig, cat: _Catalogue, index: int, size: int, end: int) -> list[dict]:
    """The clean records of one export (one listener), oldest first; keys follow the export's field order."""
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
    country = str(_COUNTRIES[int(rng.integers(len(_COUNTRIES)))])
    p_shuffle = float(rng.beta(2, 3))
    p_incognito = 0.02 if rng.random() < 0.3 else 0.0
    shows = rng.choice(cat.shows, size=min(cat.shows, 1 + int(rng.binomial(2, 0.3))), replace=False)
    book = int(rng.integers(len(cat.book_uri)))

    kind = rng.random(size)
    audiobook_share = 0.0 if legacy else config.audiobook_share
    is_episode = kind < config.podcast_share
    is_book = (kind >= config.podcast_share) & (kind < config.podcast_share + audiobook_share)
    is_music = ~(is_episode | is_book)
    track, mode = _music(cat, rng, size)
    # Podcasts: mostly the listener's own shows, now and then whatever is popular.
    show = shows[rng.integers(0, len(shows), size)]
    show_episodes = (len(cat.episode_uri) - 1 - show) // cat.shows + 1
    episode = np.where(
        rng.random(size) < 0.8,
        show + cat.shows * (rng.random(size) * show_episodes).astype(np.int64),
        _draw(np.arange(len(cat.episode_uri)), cat.episode_cdf, rng.random(size)),
    )
    chapter = (np.cumsum(is_book) - 1) % _CHAPTERS  # the book is read chapter by chapter

    # Skips follow how a track was found: favourites rarely, chart picks often.
    skipped = is_music & (rng.random(size) < _SKIP_P[mode])
    end_roll = rng.random(size)
    partial = rng.random(size)
    duration = cat.duration_ms[track]
    ms = np.where(
        is_music,
        np.where(
            skipped,
            partial * np.minimum(duration, 40_000),
            np.where(end_roll < 0.8, duration, partial * duration),
        ),
        30_000 + partial * 3_570_000,
    ).astype(np.int64)
    reason_end = np.where(
        is_music,
        np.where(
            skipped,
            np.where(end_roll < 0.85, "fwdbtn", "backbtn"),
            np.where(end_roll < 0.8, "trackdone", _INTERRUPTED[(end_roll * 20).astype(np.int64) % 4]),
        ),
        np.where(end_roll < 0.6, "endplay", "trackdone"),
    )
    end_s, new_session = _end_times(rng, ms, end, config.history_days * 86_400)
    # A play starts the way the one before it ended (trackdone, fwdbtn, backbtn), otherwise by a click or
    # an app event; a session starts from the app.
    previous_end = np.concatenate([["trackdone"], reason_end[:-1]])
    reason_start = np.where(
        new_session,
        _SESSION_START[rng.integers(0, len(_SESSION_START), size)],
        np.where(
            np.isin(previous_end, _CONTINUED),
            previous_end,
            _REASON_START[rng.integers(0, len(_REASON_START), size)],
        ),
    )

    start_s = end_s - ms // 1000
    offline = rng.random(size) < 0.05
    travel = rng.random(size) < 0.01
    agent = rng.integers(-1, len(_USER_AGENTS), size=size)
    columns: dict[str, list] = {
        "ts": (np.datetime_as_string(end_s.astype("datetime64[s]"), unit="s").astype(object) + "Z").tolist(),
        "username": [username] * size,
        "platform": np.array(devices, dtype=object)[rng.integers(0, len(devices), size=size)].tolist(),
        "ms_played": ms.tolist(),
        "conn_country": np.where(
            travel, _COUNTRIES[(np.arange(size) + index) % len(_COUNTRIES)], country
        ).tolist(),
        "ip_addr": [ip] * size,
        "ip_addr_decrypted": [ip] * size,
        "user_agent_decrypted": _where(agent >= 0, _USER_AGENTS[agent]),
        "master_metadata_track_name": _where(is_music, cat.track_name[track]),
        "master_metadata_album_artist_name": _where(is_music, cat.artist[track]),
        "master_metadata_album_album_name": _where(is_music, cat.album[track]),
        "spotify_track_uri": _where(is_music, cat.track_uri[track]),
        "episode_name": _where(is_episode, cat.episode_name[episode]),
        "episode_show_name": _where(is_episode, cat.show_name[episode]),
        "spotify_episode_uri": _where(is_episode, cat.episode_uri[episode]),
        "audiobook_title": _where(is_book, cat.book_title[book]),
        "audiobook_uri": _where(is_book, cat.book_uri[book]),
        "audiobook_chapter_uri": _where(is_book, cat.chapter_uri[book][chapter]),
        "audiobook_chapter_title": _where(is_book, _CHAPTER_TITLES[chapter]),
        "reason_start": reason_start.tolist(),
        "reason_end": reason_end.tolist(),
        "shuffle": (rng.random(size) < p_shuffle).tolist(),
        "skipped": _where(rng.random(size) >= 0.6, skipped) if legacy else skipped.tolist(),
        "offline": offline.tolist(),
        # seconds where the legacy exports have it (offline plays only), milliseconds in the new ones
        "offline_timestamp": _where(offline, start_s) if legacy else (start_s * 1000).tolist(),
        "incognito_mode": (rng.random(size) < p_incognito).tolist(),
    }
    return [
        dict(zip(order, row, strict=True)) for row in zip(*(columns[name] for name in order), strict=True)
    ]


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
