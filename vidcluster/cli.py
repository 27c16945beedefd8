"""Command line: parse, build the config, call one library function, print one summary line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import ClassVar

import click
from tqdm import tqdm

from .catalog import ALGORITHMS, DEFAULT_ENCODER, DETECTORS, ENCODERS, ENGINES
from .commands import calibrate as calibration
from .commands import search as searching
from .commands import verify as verifying
from .commands import workflow
from .config import load_config
from .errors import VidclusterError
from .run.pipeline import Summary, analyse
from .serve import serve as serving
from .version import __version__


class _Bars:
    """Draws the library's progress callbacks as one tqdm bar per stage (on stderr)."""

    LABELS: ClassVar[dict[str, str]] = {
        "probe": "probing files",
        "analyse": "files analysed",
        "video": "video analysed",
        "identities": "grouping faces",
        "report": "writing report",
        "calibrate": "labelled files",
        "units": "segments analysed",
        "clips": "cutting clips",
        "verify": "inputs hashed",
    }
    UNITS: ClassVar[dict[str, str]] = {"video": "s", "units": "segment", "clips": "clip"}
    # one step each: a bar without a count ("0/1 file/s" says nothing)
    STEPS: ClassVar[frozenset[str]] = frozenset({"identities", "report"})

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bars: dict = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = tqdm(
                total=total,
                desc=self.LABELS.get(stage, stage),
                unit=self.UNITS.get(stage, "file"),
                leave=False,
                bar_format="{desc} \u2026 {elapsed}" if stage in self.STEPS else None,  # None: tqdm's own
            )
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _fail(exc: VidclusterError) -> None:
    click.echo(f"vidcluster: error: {exc}", err=True)
    sys.exit(exc.exit_code)


class _Group(click.Group):
    """Lists commands in the order they are defined, each with its whole first paragraph (wrapped, not cut)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is None or cmd.hidden:
                continue
            text = cmd.short_help or (cmd.help or "").split("\n\n")[0]
            rows.append((name, " ".join(text.split())))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vidcluster")
def main() -> None:
    """Find who appears in CCTV footage, on which camera, and when."""


# Which flag of `run` sets which config field, so that a bad value's error names the flag.
RUN_FLAGS = {
    ("sampler", "fps"): "--fps",
    ("sampler", "since"): "--since",
    ("sampler", "until"): "--until",
    ("faces", "detector"): "--detector",
    ("faces", "encoder"): "--encoder",
    ("identities", "eps"): "--eps",
    ("identities", "algorithm"): "--algorithm",
    ("run", "workers"): "--workers",
    ("run", "engine"): "--engine",
    ("run", "address"): "--address",
    ("report", "case"): "--case",
    ("report", "examiner"): "--examiner",
}


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path), help="Output folder (store + report).")
@click.option(
    "--config",
    "-c",
    "config_paths",
    multiple=True,
    type=click.Path(path_type=Path),
    help="YAML config (see configs/); given again, the files are merged in order, a later one winning field by field.",
)
@click.option("--fps", type=float, help="Frames sampled per second of video [default: 2].")
@click.option("--detector", type=click.Choice(list(DETECTORS)), help="Face detector [default: auto].")
@click.option(
    "--encoder",
    type=click.Choice(list(ENCODERS)),
    help=f"Face encoder; its distance profile sets every distance threshold not given [default: {DEFAULT_ENCODER}].",
)
@click.option("--since", help="Window start: ISO 8601; without an offset, in each camera's time zone.")
@click.option("--until", help="Window end, same form as --since.")
@click.option("--eps", type=float, help="Clustering distance threshold [default: the encoder's, SFace 1.12, dlib 0.5].")
@click.option("--algorithm", type=click.Choice(list(ALGORITHMS)), help="Clustering algorithm.")
@click.option("--workers", type=int, help="Worker processes [default: one per core].")
@click.option("--engine", type=click.Choice(list(ENGINES)), help="Where the work runs [default: local].")
@click.option("--address", help="--engine ray: HOST:PORT of the Ray head [default: start a local Ray instance].")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--strict", is_flag=True, help="Exit with status 3 when any file was skipped or only partly read.")
@click.option("--case", help="Case reference shown on every report page and in the manifest.")
@click.option("--examiner", help="Examiner's name shown on every report page and in the manifest.")
def run(
    inputs,
    out,
    config_paths,
    fps,
    detector,
    encoder,
    since,
    until,
    eps,
    algorithm,
    workers,
    engine,
    address,
    quiet,
    strict,
    case,
    examiner,
) -> None:
    """Analyse the footage under INPUT... and write OUT/report/index.html.

    Unreadable files are skipped with a reason (stderr, manifest, report) and the run goes on;
    the exit status is 0 then, or 3 with --strict. Bad flags or config: status 2.
    """
    bars = _Bars(enabled=not quiet)
    try:
        cfg = load_config(
            config_paths,
            {
                "sampler": {"fps": fps, "since": since, "until": until},
                "faces": {"detector": detector, "encoder": encoder},
                "identities": {"eps": eps, "algorithm": algorithm},
                "run": {"workers": workers, "engine": engine, "address": address},
                "report": {"case": case, "examiner": examiner},
            },
            flag_names=RUN_FLAGS,
        )
        summary = analyse(inputs, out, cfg, progress=bars)
    except VidclusterError as exc:
        bars.close()
        _fail(exc)
    bars.close()
    _print_summary(summary, strict)


def _print_summary(summary: Summary, strict: bool) -> None:
    """The run's warnings on stderr, its one-line summary on stdout; status 3 for warnings with --strict."""
    for item in summary.left_out:
        click.echo(f"vidcluster: not walked {item['path']}: {item['reason']}", err=True)
    for item in summary.duplicates:
        click.echo(
            f"vidcluster: duplicate {item['path']}: same content (SHA-256) as {item['of']}, analysed once", err=True
        )
    for item in summary.skipped:
        click.echo(f"vidcluster: skipped {item['path']}: {item['reason']}", err=True)
    for item in summary.partial:
        click.echo(f"vidcluster: partly read {item['path']}: {item['reason']}", err=True)
    click.echo(summary.line())
    if summary.n_warnings:
        click.echo(f"vidcluster: {summary.n_warnings} warning(s): see the report's file list", err=True)
        if strict:
            sys.exit(3)


# -- workflow: regroup and correct without decoding again ---------------------------------------
def _call(fn, *args, **kwargs):
    """Run one library call; a VidclusterError becomes one line on stderr and its exit code."""
    try:
        return fn(*args, **kwargs)
    except VidclusterError as exc:
        _fail(exc)


_OUT = click.argument("out", type=click.Path(path_type=Path))


@main.command()
@_OUT
@click.option("--eps", type=float, help="Clustering distance threshold [default: the last one used].")
@click.option(
    "--algorithm", type=click.Choice(list(ALGORITHMS)), help="Clustering algorithm [default: the last one used]."
)
@click.option("--min-samples", type=int, help="Faces an identity needs at least [default: the last one used].")
def recluster(out, eps, algorithm, min_samples) -> None:
    """Group the faces in OUT again (no decoding) and rewrite the report.

    A setting not given keeps the one the case was last grouped with; a line names the settings
    that are not the defaults.
    """
    for line in _call(workflow.recluster, out, eps=eps, algorithm=algorithm, min_samples=min_samples).lines():
        click.echo(line)


@main.command()
@_OUT
@click.argument("identity", type=int)
@click.argument("label")
def name(out, identity, label) -> None:
    """Label identity ID, e.g. vidcluster name OUT 3 "man in red jacket"."""
    click.echo(_call(workflow.name, out, identity, label).line())


@main.command()
@_OUT
@click.argument("identities", type=int, nargs=-1, required=True)
def merge(out, identities) -> None:
    """Declare identities ID ID [ID...] one person (the first id is kept)."""
    click.echo(_call(workflow.merge, out, identities).line())


@main.command()
@_OUT
@click.argument("identity", type=int)
@click.argument("ref", metavar="FACE_OR_SIGHTING")
def reject(out, identity, ref) -> None:
    """Not this person: take face:ID or sighting:ID out of identity ID, for good."""
    click.echo(_call(workflow.reject, out, identity, ref).line())


class _Target(click.ParamType):
    """An identity id, or 'new' for a new identity of its own (None)."""

    name = "ID|new"

    def convert(self, value, param, ctx):
        text = str(value).strip().lower()
        if text == "new":
            return None
        if text.isdigit():
            return int(text)
        self.fail(f"{value!r} is neither an identity id nor 'new'", param, ctx)


@main.command()
@_OUT
@click.argument("sighting", type=int)
@click.option("--to", "to", required=True, type=_Target(), help="The identity to move it to, or 'new'.")
def move(out, sighting, to) -> None:
    """Move sighting SIGHTING to identity --to ID, or --to new for an identity of its own."""
    click.echo(_call(workflow.move, out, sighting, to).line())


@main.command()
@_OUT
@click.argument("a", type=int)
@click.argument("b", type=int)
def apart(out, a, b) -> None:
    """Not the same person: keep identities A and B apart in every later regrouping."""
    click.echo(_call(workflow.apart, out, a, b).line())


@main.command()
@_OUT
@click.argument("identity", type=int)
def hide(out, identity) -> None:
    """Leave identity ID (a bystander) out of the report and its exports; `undo` shows it again."""
    click.echo(_call(workflow.hide, out, identity).line())


@main.command()
@_OUT
@click.argument("identity", type=int)
@click.argument("face", type=int)
def cover(out, identity, face) -> None:
    """Show face FACE first for identity ID (on its card and page)."""
    click.echo(_call(workflow.cover, out, identity, face).line())


@main.command()
@_OUT
def corrections(out) -> None:
    """List every correction with its number and time, then the hidden identities."""
    listing = _call(workflow.corrections, out)
    if listing.stale:
        click.echo(f"vidcluster: warning: {listing.stale}", err=True)
    for line in listing.lines():
        click.echo(line)


@main.command()
@_OUT
@click.argument("number", type=int)
def undo(out, number) -> None:
    """Revert correction NUMBER (see `corrections`), regroup and rewrite the report."""
    click.echo(_call(workflow.undo, out, number).line())


@main.command()
@_OUT
@click.argument("identity", type=int)
@click.argument("text")
def note(out, identity, text) -> None:
    """Attach a note to identity ID, shown on its card and page, e.g. vidcluster note OUT 3 "seen at the till"."""
    click.echo(_call(workflow.note, out, identity, text).line())


@main.command()
@_OUT
@click.argument("identity", type=int)
@click.option("--examiner", help="Who confirms [default: the examiner of the run, if any].")
def confirm(out, identity, examiner) -> None:
    """Mark identity ID as confirmed by the examiner (shown on its card and page)."""
    click.echo(_call(workflow.confirm, out, identity, examiner=examiner).line())


@main.command()
@_OUT
@click.option("--port", type=int, default=0, show_default=True, help="Port on 127.0.0.1 (0: any free port).")
def serve(out, port) -> None:
    """Review OUT in the browser: prints http://127.0.0.1:PORT/?token=TOKEN and serves it until Ctrl-C."""
    stopped = _call(serving, out, port, ready=lambda url: click.echo(url))
    click.echo(f"vidcluster: {stopped.line()}", err=True)


@main.command()
@_OUT
@click.option("--face", "photo", required=True, type=click.Path(path_type=Path), help="Probe photo of the person.")
@click.option("--top", type=int, default=20, show_default=True, help="Sightings listed at most.")
@click.option(
    "--max-distance",
    type=float,
    default=None,
    help="Largest descriptor distance that counts as a match [default: the case's encoder's: sface 1.21, dlib 0.6].",
)
def search(out, photo, top, max_distance) -> None:
    """Every sighting of the person in a probe photo, ranked by distance (OUT/search-<photo>/)."""
    result = _call(searching.search, out, photo, top=top, max_distance=max_distance)
    for line in result.lines():
        click.echo(line)


@main.command()
@_OUT
@click.option(
    "--no-inputs",
    is_flag=True,
    help="Leave the footage out: check the store and the report only (an OUT copied alone).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def verify(out, no_inputs, quiet) -> None:
    """Check OUT against its manifest: the inputs, the store, every report file and the audit log.

    One line per difference (file added, missing or changed; input missing or changed; audit entry
    edited or newer than the report); exit status 0 when everything agrees, 6 when anything differs.
    """
    bars = _Bars(enabled=not quiet)
    result = _call(verifying.verify, out, inputs=not no_inputs, progress=bars)
    bars.close()
    for line in result.lines():
        click.echo(line)
    if not result.ok:
        sys.exit(verifying.DIFFERENCES_EXIT)


@main.command()
@click.argument("labelled_dir", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_file",
    type=click.Path(path_type=Path),
    help="Write the config fragment (YAML for run --config) here instead of printing it.",
)
@click.option(
    "--encoder",
    type=click.Choice(list(ENCODERS)),
    default=DEFAULT_ENCODER,
    show_default=True,
    help="The encoder whose thresholds to measure.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def calibrate(labelled_dir, out_file, encoder, quiet) -> None:
    """Choose clustering thresholds from LABELLED_DIR: one folder of photos or clips per person (or labels.csv)."""
    bars = _Bars(enabled=not quiet)
    result = _call(calibration.calibrate, labelled_dir, progress=bars, encoder=encoder)
    bars.close()
    for line in result.lines():
        click.echo(line)
    if out_file:
        click.echo(f"config fragment -> {_call(calibration.write_fragment, result, out_file)}")
    else:
        click.echo(result.fragment(), nl=False)


if __name__ == "__main__":  # pragma: no cover
    main()
