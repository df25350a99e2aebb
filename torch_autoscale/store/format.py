r"""The on-disk graph format: one folder of raw arrays, memory-mapped, and a
small manifest that describes them."""
import json
import logging
import os
import os.path as osp
import shutil
import tempfile
import weakref
import zlib
from typing import Any, Dict, Iterator, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch_geometric.data import Data

from torch_autoscale.errors import GraphStoreError
from torch_autoscale.history.files import check_directory, reserve
from torch_autoscale.utils.checks import check_int
from torch_autoscale.utils.mapped import mapping_kind, register_mapping
from torch_autoscale.utils.sparse import sparse_csr

log = logging.getLogger(__name__)

#: The version of the format :class:`GraphStoreWriter` writes.
STORE_VERSION = 1
#: The name of the manifest file in a store's folder.
MANIFEST = 'manifest.json'
_FORMAT = 'torch_autoscale.graph_store'
#: The dtypes arrays may have.
DTYPES = {
    'int64': torch.int64, 'int32': torch.int32, 'uint8': torch.uint8,
    'bool': torch.bool, 'float32': torch.float32, 'float16': torch.float16,
    'bfloat16': torch.bfloat16,
}
#: The bytes a checksum or copy reads at a time.
CHUNK_BYTES = 64 << 20


def dtype_name(dtype: torch.dtype) -> str:
    r"""The manifest's name of :obj:`dtype` (*e.g.*, :obj:`"float16"`)."""
    for name, value in DTYPES.items():
        if value == dtype:
            return name
    raise ValueError(f"arrays of a graph store must have one of the dtypes "
                     f"{', '.join(DTYPES)} (got {dtype})")


def _manifest_checksum(manifest: Dict[str, Any]) -> int:
    body = {k: v for k, v in manifest.items() if k != 'checksum'}
    return zlib.crc32(json.dumps(body, sort_keys=True).encode())


def _numel(shape: Sequence[int]) -> int:
    out = 1
    for size in shape:
        out *= int(size)
    return out


def _map(path: str, shape: Sequence[int], dtype: torch.dtype,
         writable: bool) -> Tensor:
    numel = _numel(shape)
    if numel == 0:
        return torch.empty(tuple(shape), dtype=dtype)
    # A private mapping for reading (no read happens until a row is
    # touched; writes would stay in memory), a shared one for writing.
    base = torch.from_file(path, shared=writable, size=numel, dtype=dtype)
    register_mapping(base, 'store')
    return base.view(tuple(shape))


def is_store_mapped(t: Tensor) -> bool:
    r"""Whether the memory of the tensor :obj:`t` is an array of a
    :class:`GraphStore` (or a view of one), memory-mapped from its file
    rather than held in memory. A copy (*e.g.*, :obj:`t.clone()`) is not.
    """
    return mapping_kind(t) == 'store'


def array_checksum(t: Tensor) -> int:
    r"""The CRC-32 of the bytes of the contiguous tensor :obj:`t`, read
    :obj:`CHUNK_BYTES` at a time."""
    flat = t.reshape(-1).view(torch.uint8) if t.numel() > 0 else t
    crc = 0
    for start in range(0, flat.numel(), CHUNK_BYTES):
        chunk = flat[start:start + CHUNK_BYTES].numpy()
        crc = zlib.crc32(chunk, crc)
    return crc


class GraphStore:
    r"""A graph kept on disk: the transposed adjacency :obj:`adj_t` as CSR
    row pointers and columns (rows are targets, columns sorted within a
    row), and node-level arrays such as features :obj:`x` (:obj:`float32`,
    :obj:`float16` or :obj:`bfloat16`), labels :obj:`y` and masks, each a
    raw file in one folder, described by a manifest
    (:obj:`manifest.json`: format version, shapes, dtypes, byte sizes,
    checksums).

    Opening a store reads its manifest and the sizes of its files, never
    the data: every array is memory-mapped, so the operating system reads
    the rows a computation touches and keeps them in its page cache, and a
    graph far larger than memory can be opened, sliced and trained on.
    Arrays are mapped privately: writing into them changes memory, never the
    files.

    A store is written by :class:`GraphStoreWriter` (or the ingestion
    functions of :mod:`torch_autoscale.store`) into a temporary folder that
    becomes the store in one rename, so a store is either complete or
    absent.

    Args:
        path (str): The store's folder.

    Raises:
        GraphStoreError: If the manifest is missing, damaged (its checksum
            does not match) or of another version, or a file is missing or
            of the wrong size.
    """
    def __init__(self, path: str):
        path = os.fspath(path)
        self.path = path
        manifest_path = osp.join(path, MANIFEST)
        try:
            with open(manifest_path) as f:
                manifest = json.load(f)
        except FileNotFoundError:
            raise GraphStoreError(
                f"{path!r} is not a graph store: it has no {MANIFEST}; "
                f"write one with torch_autoscale.store (e.g., "
                f"'store_from_data' or 'ingest_edge_list')") from None
        except (OSError, ValueError) as e:
            raise GraphStoreError(f"the manifest of graph store {path!r} "
                                  f"cannot be read ({e})") from None
        self.manifest = _check_manifest(manifest, path)
        self.num_nodes: int = manifest['num_nodes']
        self._arrays: Dict[str, Tensor] = {}
        for name, entry in manifest['arrays'].items():
            file = osp.join(path, entry['file'])
            dtype = DTYPES[entry['dtype']]
            nbytes = _numel(entry['shape']) * dtype.itemsize
            try:
                size = os.stat(file).st_size
            except FileNotFoundError:
                raise GraphStoreError(
                    f"graph store {path!r} misses the file {entry['file']!r} "
                    f"of array {name!r}; the store is damaged, write it "
                    f"again") from None
            if size != nbytes:
                raise GraphStoreError(
                    f"the file {entry['file']!r} of array {name!r} in graph "
                    f"store {path!r} holds {size} bytes, not the "
                    f"{nbytes} its manifest records (shape "
                    f"{entry['shape']}, {entry['dtype']}): it is truncated "
                    f"or damaged; write the store again")
            self._arrays[name] = _map(file, entry['shape'], dtype,
                                      writable=False)
        for name in ('rowptr', 'col'):
            if name not in self._arrays:
                raise GraphStoreError(f"graph store {path!r} has no {name!r} "
                                      f"array; it holds no adjacency")
        rowptr = self._arrays['rowptr']
        if rowptr.dim() != 1 or rowptr.numel() != self.num_nodes + 1:
            raise GraphStoreError(f"the 'rowptr' array of graph store "
                                  f"{path!r} does not have num_nodes + 1 "
                                  f"entries")

    @property
    def num_edges(self) -> int:
        r"""The number of entries of :obj:`adj_t` (directed edges)."""
        return self._arrays['col'].numel()

    @property
    def names(self) -> Tuple[str, ...]:
        r"""The names of the arrays."""
        return tuple(self._arrays)

    @property
    def attrs(self) -> Dict[str, Any]:
        r"""The plain values stored with the graph (*e.g.*,
        :obj:`num_classes`)."""
        return dict(self.manifest.get('attrs', {}))

    def __getitem__(self, name: str) -> Tensor:
        try:
            return self._arrays[name]
        except KeyError:
            raise KeyError(f"graph store {self.path!r} has no array "
                           f"{name!r}; it has {', '.join(self.names)}") \
                from None

    def __contains__(self, name: str) -> bool:
        return name in self._arrays

    @property
    def nbytes(self) -> int:
        r"""The size of all arrays on disk in bytes."""
        return sum(t.numel() * t.element_size()
                   for t in self._arrays.values())

    def adj_t(self, value: Optional[Tensor] = None) -> Tensor:
        r"""The memory-mapped adjacency as a :obj:`torch.sparse_csr` tensor
        (rows are targets); its values are :obj:`value`, the store's
        :obj:`"value"` array, or ones (one element broadcast to every
        entry, so that no edge-sized array is allocated)."""
        if value is None:
            value = self._arrays.get('value')
        if value is None:
            value = torch.ones(1).expand(self.num_edges)
        return sparse_csr(self['rowptr'], self['col'], value,
                          (self.num_nodes, self.num_nodes))

    def to_data(self) -> Data:
        r"""A :class:`~torch_geometric.data.Data` whose node-level
        attributes and :obj:`adj_t` are the store's memory-mapped arrays
        (nothing is read), ready for
        :class:`~torch_autoscale.loader.SubgraphLoader`."""
        data = Data(num_nodes=self.num_nodes, adj_t=self.adj_t())
        for name, t in self._arrays.items():
            if name not in ('rowptr', 'col', 'value'):
                data[name] = t
        return data

    def verify(self, progress: bool = False) -> None:
        r"""Reads every array once and compares it with the checksum its
        writer recorded (arrays without one are skipped).

        Raises:
            GraphStoreError: If an array does not match its checksum.
        """
        from tqdm.auto import tqdm
        entries = self.manifest['arrays']
        for name in tqdm(list(entries), desc='Verifying graph store',
                         disable=not progress, leave=False):
            crc = entries[name].get('crc32')
            if crc is not None and array_checksum(self[name]) != crc:
                raise GraphStoreError(
                    f"array {name!r} of graph store {self.path!r} does not "
                    f"match its checksum: the file {entries[name]['file']!r}"
                    f" is damaged; write the store again")

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({self.path!r}, num_nodes='
                f'{self.num_nodes}, num_edges={self.num_edges}, arrays='
                f'{list(self.names)})')


def _check_manifest(manifest: Any, path: str) -> Dict[str, Any]:
    def fail(why: str) -> GraphStoreError:
        return GraphStoreError(f"the manifest of graph store {path!r} {why}; "
                               f"write the store again")

    if not isinstance(manifest, dict) or manifest.get('format') != _FORMAT:
        raise fail("is not a torch_autoscale graph store manifest")
    if manifest.get('checksum') != _manifest_checksum(manifest):
        raise fail("does not match its checksum: it is damaged")
    version = manifest.get('version')
    if version != STORE_VERSION:
        raise GraphStoreError(
            f"graph store {path!r} has format version {version!r}; this "
            f"release reads version {STORE_VERSION}: upgrade "
            f"torch_autoscale or write the store again")
    num_nodes = manifest.get('num_nodes')
    arrays = manifest.get('arrays')
    if not isinstance(num_nodes, int) or num_nodes < 0 or \
            not isinstance(arrays, dict):
        raise fail("is malformed")
    for name, entry in arrays.items():
        if not isinstance(entry, dict) or \
                entry.get('dtype') not in DTYPES or \
                not isinstance(entry.get('shape'), list) or \
                not isinstance(entry.get('file'), str) or \
                osp.basename(entry['file']) != entry['file']:
            raise fail(f"describes array {name!r} wrongly")
    return manifest


class GraphStoreWriter:
    r"""Writes a :class:`GraphStore`: arrays are created at their full size
    (their disk space reserved at once, so a full disk is a
    :class:`~torch_autoscale.errors.StorageFullError` then, never a
    :obj:`SIGBUS` later), filled through writable memory maps, and become a
    store at :meth:`commit`: checksums and the manifest are written, every
    file is flushed, and the folder is renamed into place in one step.

    Until then everything lives in a fresh temporary folder next to
    :obj:`path`; :meth:`abort`, an exception inside a :obj:`with` block, or
    the writer's garbage collection removes it, so a failed write leaves
    nothing behind (a killed process leaves a folder named
    :obj:`.<name>.partial-*`, which the next writer of the same path
    removes).

    .. code-block:: python

        with GraphStoreWriter('graph', num_nodes=n) as writer:
            x = writer.create('x', (n, 64), torch.float16)
            for start in range(0, n, chunk):
                x[start:start + chunk] = ...
            ...  # 'rowptr' and 'col' must be written too
        store = GraphStore('graph')

    Args:
        path (str): The store's folder; its parent must exist.
        num_nodes (int): The number of nodes.
        overwrite (bool, optional): Whether an existing store at
            :obj:`path` is replaced (at :meth:`commit`).
            (default: :obj:`False`)
        checksums (bool, optional): Whether :meth:`commit` records a
            CRC-32 per array (read once more) for :meth:`GraphStore.verify`.
            (default: :obj:`True`)
    """
    def __init__(self, path: str, num_nodes: int, overwrite: bool = False,
                 checksums: bool = True):
        path = osp.abspath(os.fspath(path))
        parent = check_directory(osp.dirname(path))
        if osp.exists(path) and not overwrite:
            raise FileExistsError(
                f"{path!r} exists; pass overwrite=True to replace it or "
                f"choose another path")
        self.path = path
        self.num_nodes = int(num_nodes)
        self.checksums = checksums
        name = osp.basename(path)
        _remove_stale(parent, name)
        self.tmp = tempfile.mkdtemp(prefix=f'.{name}.partial-{os.getpid()}-',
                                    dir=parent)
        self._finalizer = weakref.finalize(self, shutil.rmtree, self.tmp,
                                           True)
        self._arrays: Dict[str, Tensor] = {}
        self.attrs: Dict[str, Any] = {}
        self._done = False

    def create(self, name: str, shape: Sequence[int],
               dtype: torch.dtype) -> Tensor:
        r"""Creates the array :obj:`name` (a file of its full size, its disk
        space reserved) and returns it as a writable memory-mapped tensor.

        Args:
            name (str): The array's name (*e.g.*, :obj:`"x"`).
            shape (tuple of int): Its shape.
            dtype (torch.dtype): Its dtype.
        """
        self._check_open()
        if not name.isidentifier():
            raise ValueError(f"array names must be identifiers (got "
                             f"{name!r})")
        if name in self._arrays:
            raise ValueError(f"array {name!r} was created already")
        dname = dtype_name(dtype)
        try:
            shape = tuple(check_int(s, 'shape', 0) for s in shape)
        except (TypeError, ValueError):
            raise ValueError(f"'shape' of array {name!r} must be a sequence "
                             f"of non-negative integers (got {shape!r})") \
                from None
        file = osp.join(self.tmp, f'{name}.bin')
        fd = os.open(file, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            reserve(fd, _numel(shape) * dtype.itemsize,
                    f"array {name!r} of graph store {self.path!r} "
                    f"({dname}, shape {list(shape)})", osp.dirname(file))
        finally:
            os.close(fd)
        t = _map(file, shape, DTYPES[dname], writable=True)
        self._arrays[name] = t
        return t

    def put(self, name: str, value: Tensor) -> Tensor:
        r"""Creates the array :obj:`name` holding :obj:`value` (an in-memory
        tensor), copied in chunks."""
        if not isinstance(value, Tensor) or value.layout != torch.strided:
            raise ValueError(f"'value' of array {name!r} must be a dense "
                             f"tensor (got {type(value).__name__})")
        value = value.detach().cpu()
        out = self.create(name, value.shape, value.dtype)
        flat, src = out.reshape(-1), value.reshape(-1)
        step = max(1, CHUNK_BYTES // max(1, value.element_size()))
        for start in range(0, src.numel(), step):
            flat[start:start + step] = src[start:start + step]
        return out

    def drop(self, name: str) -> None:
        r"""Removes the array :obj:`name` (*e.g.*, an intermediate)."""
        self._check_open()
        if self._arrays.pop(name, None) is None:
            raise KeyError(f"no array {name!r} was created")
        os.remove(osp.join(self.tmp, f'{name}.bin'))

    def __getitem__(self, name: str) -> Tensor:
        return self._arrays[name]

    def __contains__(self, name: str) -> bool:
        return name in self._arrays

    def _check_open(self) -> None:
        if self._done:
            raise RuntimeError("this GraphStoreWriter was committed or "
                               "aborted; create a new one")

    def commit(self) -> GraphStore:
        r"""Checks the adjacency arrays, records checksums and the manifest,
        flushes every file and renames the folder into place; returns the
        opened store."""
        self._check_open()
        for name in ('rowptr', 'col'):
            if name not in self._arrays:
                raise ValueError(f"a graph store needs the array {name!r}; "
                                 f"create it before commit()")
        rowptr = self._arrays['rowptr']
        if rowptr.numel() != self.num_nodes + 1 or int(rowptr[0]) != 0 or \
                int(rowptr[-1]) != self._arrays['col'].numel():
            raise ValueError("'rowptr' must have num_nodes + 1 entries, "
                             "start at 0 and end at the length of 'col'")
        arrays = {}
        for name, t in self._arrays.items():
            entry = dict(file=f'{name}.bin', dtype=dtype_name(t.dtype),
                         shape=list(t.shape))
            if self.checksums:
                entry['crc32'] = array_checksum(t)
            arrays[name] = entry
        manifest = dict(format=_FORMAT, version=STORE_VERSION,
                        num_nodes=self.num_nodes, arrays=arrays,
                        attrs=self.attrs)
        manifest['checksum'] = _manifest_checksum(manifest)
        self._arrays.clear()  # Unmap before the files are flushed.
        for name in arrays:
            _fsync(osp.join(self.tmp, f'{name}.bin'))
        with open(osp.join(self.tmp, MANIFEST), 'x') as f:
            json.dump(manifest, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(self.tmp)
        old = None
        if osp.exists(self.path):  # overwrite=True: move the old one aside.
            old = tempfile.mkdtemp(
                prefix=f'.{osp.basename(self.path)}.old-{os.getpid()}-',
                dir=osp.dirname(self.path))
            os.rename(self.path, osp.join(old, 'store'))
        os.rename(self.tmp, self.path)
        _fsync_dir(osp.dirname(self.path))
        self._done = True
        self._finalizer.detach()
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return GraphStore(self.path)

    def abort(self) -> None:
        r"""Removes everything written so far."""
        if not self._done:
            self._done = True
            self._arrays.clear()
            self._finalizer()

    def __enter__(self) -> 'GraphStoreWriter':
        return self

    def __exit__(self, kind, value, tb) -> None:
        if kind is not None:
            self.abort()
        elif not self._done:
            self.commit()


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: str) -> None:
    try:
        _fsync(path)
    except OSError:  # Folders cannot be opened for fsync everywhere.
        pass


def _remove_stale(parent: str, name: str) -> None:
    r"""Removes the temporary folders of writers of :obj:`name` whose
    process is gone."""
    prefix = f'.{name}.partial-'
    for entry in os.listdir(parent):
        if not entry.startswith(prefix):
            continue
        pid = entry[len(prefix):].split('-', 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            log.info(f"removing the leftover of an interrupted write, "
                     f"{osp.join(parent, entry)!r}")
            shutil.rmtree(osp.join(parent, entry), ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def chunks(total: int, size: int) -> Iterator[Tuple[int, int]]:
    r"""The ranges :obj:`(start, end)` that cover :obj:`[0, total)` in
    steps of :obj:`size`."""
    for start in range(0, total, size):
        yield start, min(total, start + size)
