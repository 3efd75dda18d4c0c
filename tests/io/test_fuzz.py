"""Seeded fuzzing of the raw reader: mutants of valid and real files read in a child process with a memory limit.

The contract (DESIGN.md, "Real files"): whatever a file holds, ``read_raw``/``read_linear``
raise only RawFormatError (ConfigError for a sidecar), in bounded time and memory. Each
mutant is read in a child process whose address space is limited (RLIMIT_AS) and whose
every read must finish within a time limit; a child that dies or hangs is a failure
naming the mutant, and is restarted for the remaining ones.
"""

from __future__ import annotations

import json
import os
import selectors
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
import tiffmaker as tm

from ispkit.camera import Camera
from ispkit.io import write_raw
from ispkit.io.tiff import read_tiff

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS and /proc/self/statm are Linux")

CORPUS = Path(__file__).parents[1] / "data" / "real"
SEED = 15
EXTRA_MEMORY = 1_500_000_000  # bytes of address space a child may add to what it holds after its imports
PER_READ_SECONDS = 20.0  # generous for a loaded 2-core machine; a hang would never answer
MAX_PIXELS = 16_000_000  # the children's limit: every seed (at most 12 M) reads, huge declarations do not

CHILD = r"""
import json, os, resource, sys
import numpy as np
from ispkit.errors import ConfigError, RawFormatError
from ispkit.io import read_linear, read_raw

paths = sys.stdin.read().split("\n")
held = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
limit = held + int(os.environ["FUZZ_EXTRA_MEMORY"])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
print("ready", flush=True)
for path in paths:
    reader = read_linear if os.path.basename(path).startswith("linear") else read_raw
    try:
        image = reader(path)
        data = image.rgb if hasattr(image, "rgb") else image.mosaic
        outcome = "ok" if np.isfinite(data).all() else "ok but not finite"
    except RawFormatError as exc:
        outcome = "RawFormatError: " + str(exc)
    except ConfigError as exc:
        outcome = "ConfigError: " + str(exc)
    except BaseException as exc:
        outcome = "OTHER " + type(exc).__name__ + ": " + str(exc)[:500]
    print(json.dumps([path, outcome]), flush=True)
"""


# -- seeds ----------------------------------------------------------------------------------


def _seeds(folder: Path) -> dict[str, bytes]:
    rng = np.random.default_rng(SEED)
    camera = Camera(name="fuzz", pattern="GBRG", bit_depth=12, container_bits=12, black_level=(0.01,) * 4)
    write_raw(folder / "seed.tiff", rng.integers(0, 4096, (32, 48)) / 4095, camera)
    seeds = {"tiff": (folder / "seed.tiff").read_bytes()}
    main = {50708: (tm.ASCII, "Fuzz Cam"), 50728: (tm.RATIONAL, [1, 2, 1, 1, 2, 3])}
    data12 = rng.integers(0, 4096, (24, 40))
    page = tm.cfa_page(
        40,
        24,
        12,
        [tm.pack_bits(data12[r : r + 8], 12) for r in (0, 8, 16)],
        rows_per_strip=8,
        extra={50717: (tm.SHORT, [4095]), 50714: (tm.SHORT, [64]), 50829: (tm.SHORT, [2, 2, 22, 38]), 50719: (tm.LONG, [2, 2]), 50720: (tm.LONG, [30, 16])},
    )
    seeds["dng-packed12-be"] = tm.dng(page, main_tags=dict(main), byteorder=">")
    data14 = rng.integers(0, 2**14, (40, 64))
    page = tm.cfa_page(
        64,
        40,
        14,
        [tm.ljpeg(t, 14, 2) for t in tm.tiles(data14, (32, 32))],
        compression=7,
        tiled=(32, 32),
        extra={50717: (tm.SHORT, [16383]), 50712: (tm.SHORT, list(range(0, 16384, 4)))},
    )
    seeds["dng-ljpeg-tiles"] = tm.dng(page, main_tags=dict(main), in_subifd=True)
    data16 = rng.integers(0, 60000, (16, 24))
    page = tm.cfa_page(
        24,
        16,
        16,
        [tm.deflate(tm.plain(tm.difference(data16, 16), 16))],
        compression=8,
        extra={
            317: (tm.SHORT, [2]),
            50713: (tm.SHORT, [2, 2]),
            50714: (tm.SHORT, [100, 101, 102, 103]),
            50715: (tm.SSHORT, list(range(24))),
            50716: (tm.SSHORT, [1] * 16),
        },
    )
    seeds["dng-deflate"] = tm.dng(page, main_tags=dict(main))
    # The rendering tags the camera is built from: colour matrices, noise profile, GainMap and FixVignetteRadial opcodes.
    colour = {
        50721: (tm.SRATIONAL, [6018, 10000, -617, 10000, -965, 10000, -8645, 10000, 15881, 10000, 2975, 10000, -1530, 10000, 1719, 10000, 7642, 10000]),
        50722: (tm.SRATIONAL, [6159, 10000, -945, 10000, -745, 10000, -6846, 10000, 13563, 10000, 3684, 10000, -802, 10000, 1086, 10000, 7555, 10000]),
        50778: (tm.SHORT, [17]),
        50779: (tm.SHORT, [21]),
        51041: (tm.DOUBLE, [2e-4, 1e-7]),
        50730: (tm.SRATIONAL, [1, 4]),
    }
    maps = [tm.opcode(9, tm.gain_map_params(rng.uniform(1, 2, (3, 4, 1)).astype(np.float32), area=(k // 2, k % 2, 16, 24), pitch=(2, 2))) for k in range(4)]
    page = tm.cfa_page(
        24,
        16,
        16,
        [tm.plain(data16, 16)],
        extra={
            50717: (tm.SHORT, [60000]),
            51009: (tm.UNDEFINED, tm.opcode_list(*maps, tm.opcode(4, bytes(8)))),
            51022: (tm.UNDEFINED, tm.opcode_list(tm.opcode(3, tm.vignette_params()))),
        },
    )
    seeds["dng-colour-opcodes"] = tm.dng(page, main_tags={**main, **colour})
    rgb = rng.integers(0, 4096, (8, 10 * 3))
    page = tm.cfa_page(
        10,
        8,
        16,
        [tm.plain(rgb, 16)],
        extra={262: (tm.SHORT, [34892]), 277: (tm.SHORT, [3]), 258: (tm.SHORT, [16] * 3), 50714: (tm.SHORT, [10, 11, 12]), 50717: (tm.SHORT, [4095])},
    )
    seeds["linear-dng"] = tm.dng(page, main_tags=dict(main))
    for name in ("canon_eos_kiss_x4_colorchart.dng", "exiftool_canon_350d_stripped.dng", "gopro_hero6_GOPR0024.GPR"):
        seeds[f"real-{name}"] = (CORPUS / name).read_bytes()
    return seeds


# -- mutations ------------------------------------------------------------------------------

EXTREMES = [0, 1, 2, 7, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]


def _entries(content: bytes) -> tuple[str, list[int], list[int]]:
    """Byte order, the offsets of every IFD and of every IFD entry (classic TIFF)."""
    structure = read_tiff(content, Path("seed"))
    order = structure.byteorder
    ifds = [ifd.offset for ifd in structure.walk()]
    entries = []
    for at in ifds:
        (n,) = struct.unpack_from(order + "H", content, at)
        entries += [at + 2 + 12 * i for i in range(n)]
    return order, ifds, entries


def _mutants(content: bytes, rng: np.random.Generator) -> list[bytes]:
    order, ifds, entries = _entries(content)
    size = len(content)
    hot = sorted({p for at in entries for p in range(at, at + 12)} | set(range(min(size, 64))))
    out = []
    for _ in range(5):  # truncations: inside the header, the IFDs or the data
        out.append(content[: int(rng.integers(0, size))])
    for _ in range(14):  # byte flips in the structure
        mutant = bytearray(content)
        for _ in range(int(rng.integers(1, 9))):
            mutant[int(rng.choice(hot))] = int(rng.integers(0, 256))
        out.append(bytes(mutant))
    for _ in range(6):  # byte flips anywhere, pixel data included
        mutant = bytearray(content)
        for _ in range(int(rng.integers(1, 17))):
            mutant[int(rng.integers(0, size))] ^= int(rng.integers(1, 256))
        out.append(bytes(mutant))
    for _ in range(16):  # tag patches: type, count or value/offset set to an extreme or random number
        mutant = bytearray(content)
        at = int(rng.choice(entries))
        field = int(rng.integers(0, 3))
        value = int(rng.choice([*EXTREMES, size, size - 1, int(rng.integers(0, 2**32))]))
        if field == 0:
            struct.pack_into(order + "H", mutant, at + 2, value & 0xFFFF)
        else:
            struct.pack_into(order + "I", mutant, at + 4 * field, value)
        out.append(bytes(mutant))
    out += _values(content, order, entries, rng)
    out += _loops(content, order, ifds, entries)
    out += _huge(content, order, entries)
    return out


# Tags whose values the DNG reader interprets (levels, rectangles, patterns, sizes, white balance).
INTERPRETED = (256, 257, 258, 259, 262, 277, 278, 322, 323, 33421, 33422, 50710, 50711, 50712, 50713, 50714, 50715, 50716, 50717, 50719, 50720, 50728, 50829)
LEVELS = (50714, 50717, 50829)  # BlackLevel, WhiteLevel, ActiveArea: every odd value
ODD_VALUES = [("f", float("nan")), ("f", float("inf")), ("f", -1.0), ("f", 1e30), ("f", 2.5), ("i", -1), ("i", -(2**31)), ("I", 2**31)]


def _values(content: bytes, order: str, entries: list[int], rng: np.random.Generator) -> list[bytes]:
    """Interpreted tags given one odd value inline: NaN, infinities, negatives, huge numbers, fractions."""
    codes = {at: struct.unpack_from(order + "H", content, at)[0] for at in entries}
    chosen = [(at, int(rng.integers(0, len(ODD_VALUES)))) for at, code in codes.items() if code in INTERPRETED]
    chosen += [(at, i) for at, code in codes.items() if code in LEVELS for i in range(len(ODD_VALUES))]
    out = []
    for at, i in chosen:
        fmt, value = ODD_VALUES[i]
        kind = {"f": 11, "i": 9, "I": 4}[fmt]  # FLOAT, SLONG, LONG
        mutant = bytearray(content)
        struct.pack_into(order + "HI" + fmt, mutant, at + 2, kind, 1, value)
        out.append(bytes(mutant))
    return out


def _loops(content: bytes, order: str, ifds: list[int], entries: list[int]) -> list[bytes]:
    """Next-IFD pointers to the same or an earlier IFD, and SubIFD pointers to the parent."""
    out = []
    for target in {ifds[0], ifds[-1]}:
        for at in ifds:
            mutant = bytearray(content)
            (n,) = struct.unpack_from(order + "H", content, at)
            struct.pack_into(order + "I", mutant, at + 2 + 12 * n, target)
            out.append(bytes(mutant))
            break
    for at in entries:
        if struct.unpack_from(order + "H", content, at)[0] == 330:
            mutant = bytearray(content)
            count = struct.unpack_from(order + "I", content, at + 4)[0]
            where = at + 8 if count == 1 else struct.unpack_from(order + "I", content, at + 8)[0]
            struct.pack_into(order + "I", mutant, where, ifds[0])
            out.append(bytes(mutant))
    return out


def _huge(content: bytes, order: str, entries: list[int]) -> list[bytes]:
    """ImageWidth/ImageLength patched to huge values (LONG, so any value fits)."""
    out = []
    for value in (100_000, 0x7FFFFFFF):
        mutant = bytearray(content)
        for at in entries:
            if struct.unpack_from(order + "H", content, at)[0] in (256, 257):
                struct.pack_into(order + "HI", mutant, at + 2, 4, 1)
                struct.pack_into(order + "I", mutant, at + 8, value)
        out.append(bytes(mutant))
    return out


BOMB = "ispkit-camera: 1\nname: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{k}: &{k} [{', '.join(['*' + p] * 9)}]\n" for p, k in zip("abcdefg", "bcdefgh", strict=True)
)
HOSTILE_YAML = [
    BOMB,
    "ispkit-camera: 1\nname: " + "[" * 5000 + "]" * 5000 + "\n",
    "ispkit-camera: 1\nname: " + "x" * 2_000_000 + "\n",
    "ispkit-camera: 1\nname: a\nname: b\n",
    "ispkit-camera: 1\nname: !!python/object/apply:os.system [echo]\n",
    "ispkit-camera: 1\nname: [a, b]\n",
    "ispkit-camera: 1\n\x00\x01\x02 binary",
    "ispkit-camera:x: 1\nname: a\n",
    "ispkit-camera:\n- 1\n- 2\n",
    "ispkit-camera: 1\nname: a\nblack_level: [1.0, 1.0, 1.0, 1.0]\n",
]


def _write_all(folder: Path) -> list[Path]:
    rng = np.random.default_rng(SEED)
    paths = []
    for name, content in _seeds(folder).items():
        prefix = "linear" if name.startswith("linear") else "m"  # the child reads "linear*" files with read_linear
        suffix = ".tiff" if name == "tiff" else ".dng"
        for i, mutant in enumerate(_mutants(content, rng)):
            path = folder / f"{prefix}-{name}-{i:03d}{suffix}"
            path.write_bytes(mutant)
            paths.append(path)
    for i, text in enumerate(HOSTILE_YAML):  # embedded in the ImageDescription, and as a sidecar
        embedded = folder / f"m-yaml-{i}.tiff"
        tifffile.imwrite(embedded, np.zeros((4, 4), np.uint16), description=text, metadata=None)
        plain = folder / f"m-sidecar-{i}.tiff"
        tifffile.imwrite(plain, np.zeros((4, 4), np.uint16))
        Path(f"{plain}.camera.yaml").write_text(text.replace("ispkit-camera: 1\n", ""), encoding="utf-8", errors="replace")
        paths += [embedded, plain]
    return paths


# -- running --------------------------------------------------------------------------------


def _read_in_children(paths: list[Path], folder: Path) -> dict[str, str]:
    """Outcome per path; a child that dies or does not answer in time is recorded against the path it was reading."""
    env = {**os.environ, "FUZZ_EXTRA_MEMORY": str(EXTRA_MEMORY), "ISPKIT_MAX_PIXELS": str(MAX_PIXELS), "OMP_NUM_THREADS": "1"}
    results: dict[str, str] = {}
    pending = [str(p) for p in paths]
    while pending:
        with open(folder / "child.err", "w+") as errors:
            child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True, env=env)
            child.stdin.write("\n".join(pending))
            child.stdin.close()
            answered = _collect(child, pending, results)
            if answered < len(pending):  # the child died or hung on pending[answered]
                child.kill()
                child.wait()
                errors.seek(0)
                results[pending[answered]] = f"CHILD FAILED (exit {child.returncode}): {errors.read()[-800:]}"
                answered += 1
            else:
                child.wait(timeout=60)
        pending = pending[answered:]
    return results


def _collect(child: subprocess.Popen, pending: list[str], results: dict[str, str]) -> int:
    selector = selectors.DefaultSelector()
    selector.register(child.stdout, selectors.EVENT_READ)
    answered, started = 0, False
    while answered < len(pending):
        if not selector.select(timeout=PER_READ_SECONDS if started else 120.0):
            results[pending[answered]] = "HANG"
            return answered
        line = child.stdout.readline()
        if not line:
            return answered
        if line == "ready\n":
            started = True
            continue
        path, outcome = json.loads(line)
        results[path] = outcome
        answered += 1
    return answered


def test_mutated_files_give_only_raw_format_or_config_errors(tmp_path):
    start = time.perf_counter()
    paths = _write_all(tmp_path)
    assert len(paths) >= 300
    results = _read_in_children(paths, tmp_path)
    assert set(results) == {str(p) for p in paths}
    bad = {Path(p).name: o for p, o in results.items() if not o.startswith(("ok", "RawFormatError: ", "ConfigError: ")) or o == "ok but not finite"}
    assert not bad, f"{len(bad)} mutant(s) broke the contract: {dict(list(bad.items())[:10])}"
    missed = {Path(p).name: o for p, o in results.items() if "internal check missed" in o}
    assert not missed, f"refused only by the reader's safety net (a check is missing): {dict(list(missed.items())[:10])}"
    unnamed = {Path(p).name: o for p, o in results.items() if o.startswith("RawFormatError") and Path(p).name not in o}
    assert not unnamed, f"errors that do not name the file: {dict(list(unnamed.items())[:5])}"
    kinds = [o.split(":")[0] for o in results.values()]
    assert kinds.count("RawFormatError") > len(paths) // 3 and kinds.count("ok") > 20  # the mutants hit both outcomes
    assert kinds.count("ConfigError") >= 5  # hostile sidecars
    assert all(results[str(p)].startswith("RawFormatError") for p in paths if "-yaml-" in p.name)
    assert time.perf_counter() - start < 120
