"""The new artifacts survive what every artifact goes through: redaction, the saved-state
cap, JSON and back, and render to evidence and JUnit text."""

from __future__ import annotations

import math

from pydantic import TypeAdapter

from opsconsole.artifacts import (
    Artifact,
    JobResultArtifact,
    ProgressArtifact,
    SeriesArtifact,
    redact_and_cap,
)
from opsconsole.thresholds import format_value, parse_threshold

ADAPTER: TypeAdapter[Artifact] = TypeAdapter(Artifact)


def roundtrip(artifact: Artifact) -> Artifact:
    kept = redact_and_cap(artifact, lambda value: value)
    return ADAPTER.validate_json(ADAPTER.dump_json(kept))


def test_job_result_roundtrips_and_renders() -> None:
    result = JobResultArtifact(
        badge="Partial",
        status="success",
        sources=[["playlists", "ok", "", "ok"], ["library_scan", "ok", "1 reported: x", "problem"]],
        metrics=[("tracks_synced", "118")],
        warnings=["token | cached"],
    )
    again = roundtrip(result)
    assert again == result
    blocks = again.blocks()
    assert blocks[0].title == "Result: ▲ Partial (status success)"
    assert "! library_scan" in blocks[1].text and "✓ playlists" in blocks[1].text
    markdown = again.markdown()
    assert "Result: **Partial**" in markdown and "token \\| cached" in markdown
    assert "tracks_synced" in again.junit()


def test_series_keeps_gaps_and_caps_points() -> None:
    series = SeriesArtifact(query="up", step_s=15, points=[1.0, None, 3.0] * 400)
    again = roundtrip(series)
    assert isinstance(again, SeriesArtifact)
    assert len(again.points) == 500 and again.points[-1] == 3.0
    assert " " in again.sparkline()
    assert SeriesArtifact(points=[None, None]).summary() == "2 points, no data"


def test_progress_line() -> None:
    progress = ProgressArtifact(label="Enrichment", done=612, total=1497, rate=20.4)
    assert roundtrip(progress) == progress
    assert progress.line(10).endswith("612 of 1,497 (41%) · 20.4/s")
    assert ProgressArtifact(done=3).line() == "3 done"


def test_thresholds() -> None:
    assert str(parse_threshold(">=0.05")) == ">= 0.05"
    assert not parse_threshold("!= 0").met(math.nan)
    assert parse_threshold("> 5").met(math.inf)
    assert format_value(math.inf) == "+Inf" and format_value(7.0) == "7"
    for bad in ("< NaN", "< inf", "about 5", "<", 5):
        try:
            parse_threshold(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was accepted")
