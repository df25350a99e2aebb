r"""What the benchmark scripts share: where results go, the command and
commit a result records, memory readings, JSONL results and Markdown tables.

Every benchmark writes two files, by default under ``benchmark/results/``
(``--out`` names the table): the Markdown table ``NAME.md`` and its raw
results ``NAME.jsonl`` beside it, one JSON object per line (one run, seed,
case or measurement each, with the command that produced it). New
measurements are appended, or replace the records they redo; the table is
rebuilt from the JSONL file alone (``--table-only`` does only that), so it
shows what was measured and the commands that measured it, nothing else.
Notes and readings of the results are written by hand in
``benchmark/README.md``.

The scripts import this module from their own folder (the folder of a
script that runs is on :obj:`sys.path`; the scripts under ``small/`` add
``benchmark/``).
"""
import contextlib
import json
import os
import os.path as osp
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Optional,
    Sequence,
    Tuple,
)

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(HERE)
RESULTS = osp.join(HERE, 'results')
MiB = 2**20
GiB = 2**30

Record = Dict[str, Any]

# Command line and provenance #################################################


def command_line(script: str, argv: Optional[Sequence[str]] = None) -> str:
    r"""The command that runs :obj:`script` with :obj:`argv` (default: this
    process' arguments), as typed from the repository root:
    ``python benchmark/NAME.py ARGS``, quoted as a shell would need it. The
    glibc allocator variables (``MALLOC_*``) of the environment come first,
    as they change CPU timings (``benchmark/cpu_malloc.py``).

    Args:
        script (str): The script's path (:obj:`__file__`).
        argv (Sequence[str], optional): Its arguments, without the script.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    env = [f'{k}={shlex.quote(v)}' for k, v in sorted(os.environ.items())
           if k.startswith('MALLOC_')]
    path = osp.relpath(osp.abspath(script), ROOT).replace(os.sep, '/')
    return ' '.join(env + ['python', shlex.join([path] + argv)])


def _git(*args: str) -> Optional[str]:
    try:
        return subprocess.run(['git', *args], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def git_commit() -> str:
    r"""The commit of the code that measures (or :obj:`"unknown"` outside a
    git checkout)."""
    return _git('rev-parse', 'HEAD') or 'unknown'


def git_dirty() -> Optional[bool]:
    r"""Whether the library (``torch_autoscale/``, ``csrc/``) differs from
    the commit (:obj:`None` outside a git checkout)."""
    out = _git('status', '--porcelain', '--', 'torch_autoscale', 'csrc')
    return None if out is None else bool(out)


def provenance() -> Record:
    r"""What every record names besides its measurement: the commit (and
    whether the library had uncommitted changes), PyTorch and Python."""
    import torch
    return dict(commit=git_commit(), dirty=git_dirty(),
                torch=torch.__version__, python=platform.python_version())


# Memory ######################################################################


def status_kib(pid: Any, field: str) -> Optional[int]:
    r"""A field of ``/proc/PID/status`` in KiB (:obj:`None` where there is
    none)."""
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_rss(pid: Any = 'self') -> int:
    r"""The peak resident set size of a process in bytes (VmHWM, or
    :obj:`ru_maxrss` of this process where ``/proc`` is missing)."""
    kib = status_kib(pid, 'VmHWM')
    if kib is None and pid == 'self':
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return 1024 * (kib or 0)


class RssSampler:
    r"""Samples ``RssAnon`` and ``RssFile`` of a process every
    :obj:`interval` seconds in a thread and keeps their peaks in bytes:
    the kernel keeps no high-water mark per kind, and a process that maps
    files counts the mapped pages it touched in its RSS although the
    kernel can drop them at any time (they are page cache)."""
    def __init__(self, pid: int, interval: float = 0.2):
        import threading
        self.pid, self.interval = pid, interval
        self.peak_anon = self.peak_file = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            anon = status_kib(self.pid, 'RssAnon')
            file = status_kib(self.pid, 'RssFile')
            if anon is not None:
                self.peak_anon = max(self.peak_anon, 1024 * anon)
            if file is not None:
                self.peak_file = max(self.peak_file, 1024 * file)
            self._stop.wait(self.interval)

    def stop(self) -> None:
        r"""Stops sampling."""
        self._stop.set()
        self._thread.join()


class MemoryCgroup:
    r"""A memory cgroup (v2, or v1's memory controller) with a hard limit of
    :obj:`limit` bytes, for one child process: everything the process
    charges (anonymous memory and the page cache it reads or writes) stays
    under the limit, the kernel reclaiming page cache to keep it there and
    killing the process if its own memory does not fit. Needs write access
    to ``/sys/fs/cgroup`` (root in a container).

    Use :meth:`enter` as the :obj:`preexec_fn` of :class:`subprocess.Popen`,
    read :attr:`peak` after the process ends, then :meth:`remove`.
    """
    ROOT = '/sys/fs/cgroup'

    def __init__(self, name: str, limit: int):
        self.v2 = os.path.exists(os.path.join(self.ROOT, 'cgroup.controllers'))
        base = self.ROOT if self.v2 else os.path.join(self.ROOT, 'memory')
        self.path = os.path.join(base, name)
        os.makedirs(self.path, exist_ok=True)
        self._write('memory.max' if self.v2 else 'memory.limit_in_bytes',
                    str(limit))
        self.limit = limit

    def _write(self, name: str, value: str) -> None:
        with open(os.path.join(self.path, name), 'w') as f:
            f.write(value)

    def enter(self) -> None:
        r"""Moves the calling process into the cgroup."""
        self._write('cgroup.procs', str(os.getpid()))

    @property
    def peak(self) -> Optional[int]:
        r"""The most memory the cgroup was charged, in bytes."""
        name = 'memory.peak' if self.v2 else 'memory.max_usage_in_bytes'
        try:
            with open(os.path.join(self.path, name)) as f:
                return int(f.read())
        except (OSError, ValueError):
            return None

    def remove(self) -> None:
        r"""Removes the (empty) cgroup."""
        try:
            os.rmdir(self.path)
        except OSError:
            pass


def drop_page_cache() -> bool:
    r"""Writes dirty pages back and drops the page cache (root only), so
    that what a process reads next comes from the disk and is charged to
    its cgroup; returns whether it could."""
    os.sync()
    try:
        with open('/proc/sys/vm/drop_caches', 'w') as f:
            f.write('1')
        return True
    except OSError:
        return False


def folder_bytes(path: str) -> int:
    r"""The bytes of the files under :obj:`path` (allocated blocks, so
    sparse files count what they hold)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


def current_rss() -> int:
    r"""The resident set size of this process in bytes."""
    kib = status_kib('self', 'VmRSS')
    return 1024 * kib if kib is not None else peak_rss()


def reset_peak_rss() -> bool:
    r"""Resets this process' peak-RSS mark to its current RSS (Linux >= 4.0),
    so that the peak measured afterwards excludes earlier phases; returns
    whether it could."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


# JSONL results ###############################################################


def jsonl_path(table: str) -> str:
    r"""The raw results beside the table :obj:`table`."""
    return osp.splitext(table)[0] + '.jsonl'


def read_jsonl(path: str) -> List[Record]:
    r"""The records of :obj:`path` (none if it does not exist)."""
    if not osp.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def append_jsonl(path: str, *records: Record) -> None:
    r"""Appends :obj:`records` to :obj:`path`, one line each."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'a') as f:
        for record in records:
            f.write(json.dumps(record) + '\n')


def write_text(path: str, text: str) -> None:
    r"""Writes :obj:`text` to :obj:`path` atomically: into an exclusive
    temporary file beside it, renamed over :obj:`path` once complete, and
    removed if anything fails (so that two processes, or a killed one, never
    leave a half-written results file)."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix='.tmp',
                               prefix=f'.{osp.basename(path)}.')
    try:
        with os.fdopen(fd, 'w') as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide results.
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: str, obj: Record) -> None:
    r"""Writes :obj:`obj` to :obj:`path` as indented JSON, atomically."""
    write_text(path, json.dumps(obj, indent=1))


def write_jsonl(path: str, records: Iterable[Record]) -> None:
    r"""Writes :obj:`records` to :obj:`path` (replaced at once)."""
    write_text(path, ''.join(json.dumps(r) + '\n' for r in records))


def drop_jsonl(path: str, drop: Callable[[Record], bool]) -> List[Record]:
    r"""Removes the records :obj:`drop` selects from :obj:`path` (those a
    new run redoes) and returns the records kept."""
    records = read_jsonl(path)
    kept = [r for r in records if not drop(r)]
    if len(kept) < len(records):
        write_jsonl(path, kept)
    return kept


# Tables ######################################################################


def commands(records: Iterable[Record]) -> List[str]:
    r"""The commands of :obj:`records`, each once, in order."""
    out: List[str] = []
    for r in records:
        if r.get('command') and r['command'] not in out:
            out.append(r['command'])
    return out


def values(records: Iterable[Record], key: str) -> str:
    r"""The values of :obj:`key` in :obj:`records`, each once (e.g. the
    PyTorch versions a table's rows were measured with)."""
    out: List[str] = []
    for r in records:
        if r.get(key) is not None and str(r[key]) not in out:
            out.append(str(r[key]))
    return ', '.join(out) or 'not recorded'


def mean_std(xs: Iterable[float]) -> Tuple[float, float]:
    r"""Mean and sample standard deviation (0 for one value)."""
    xs = list(xs)
    return statistics.mean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0


def markdown_table(header: Sequence[str],
                   rows: Iterable[Sequence[Any]]) -> List[str]:
    r"""The lines of a Markdown table."""
    return (['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)] +
            ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows])


def write_markdown(path: str, title: str, command_lines: Sequence[str],
                   body: Sequence[str]) -> str:
    r"""Writes the table file :obj:`path`: the title, the commands that
    produced its records, the raw results file and :obj:`body`; returns its
    text."""
    lines = [f'# {title}', '', 'Produced by (from the repository root):',
             '', '```bash', *(command_lines or ['# not recorded']), '```',
             '', f'Raw results, one JSON object per line: '
             f'`{osp.basename(jsonl_path(path))}` beside this file.', '',
             *body]
    text = '\n'.join(lines).rstrip('\n') + '\n'
    write_text(path, text)
    return text


def write_table(path: str, table) -> str:
    r"""Rebuilds the table file :obj:`path` from the JSONL results beside it
    with :obj:`table(records) -> (title, body lines)`, prints it and returns
    its text."""
    records = read_jsonl(jsonl_path(path))
    title, body = table(records)
    text = write_markdown(path, title, commands(records), body)
    print(text)
    return text


def add_output_options(parser, name: str, skip_done: bool = True) -> None:
    r"""The options every benchmark shares: :obj:`--out` (the table; the
    JSONL results beside it), :obj:`--table-only` and, where runs can be
    resumed, :obj:`--skip-done`."""
    parser.add_argument('--out', default=osp.join(RESULTS, f'{name}.md'),
                        help='the Markdown table; the raw results are the '
                        '.jsonl file beside it (default: '
                        f'benchmark/results/{name}.md)')
    parser.add_argument('--table-only', action='store_true',
                        help='only rebuild the table from the .jsonl file')
    if skip_done:
        parser.add_argument('--skip-done', action='store_true',
                            help='keep the runs already in the .jsonl file '
                            'and measure only the missing ones (without '
                            'it, the runs a command redoes are replaced)')
