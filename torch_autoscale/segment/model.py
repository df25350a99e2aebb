r"""Graph Segment Training (GST) and its variants as one module."""
import logging
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.utils import scatter
from tqdm.auto import tqdm

from torch_autoscale.history.segment_history import SegmentHistory
from torch_autoscale.segment.loader import SegmentBatch

log = logging.getLogger(__name__)

#: Every training variant of the paper.
VARIANTS = ('full', 'gst', 'gst-one', 'gst-e', 'gst-ef', 'gst-ed', 'gst-efd')


class Variant(NamedTuple):
    r"""The ingredients of a training variant.

    Attributes:
        mode (str): :obj:`"full"` (whole graphs), :obj:`"gst"` (other
            segments through the backbone without gradients), :obj:`"one"`
            (sampled segments only) or :obj:`"table"` (other segments from
            the segment table).
        finetune (bool): Whether training ends with head finetuning (+F).
        sed (bool): Whether stale embeddings are dropped (+D).
    """
    mode: str
    finetune: bool
    sed: bool

    @staticmethod
    def parse(variant: str) -> 'Variant':
        if variant not in VARIANTS:
            raise ValueError(f"unknown 'variant' {variant!r}; choose one of "
                             f"{', '.join(VARIANTS)}")
        if variant == 'full':
            return Variant('full', False, False)
        if variant == 'gst':
            return Variant('gst', False, False)
        if variant == 'gst-one':
            return Variant('one', False, False)
        suffix = variant[len('gst-'):]
        return Variant('table', 'f' in suffix, 'd' in suffix)


class GSTModel(torch.nn.Module):
    r"""Graph property prediction with Graph Segment Training, from
    `"Learning Large Graph Property Prediction via Graph Segment Training"
    <https://arxiv.org/abs/2305.12322>`_ (Cao et al., NeurIPS 2023).

    Every graph :math:`i` is split into :math:`J_i` segments. Per step, the
    :math:`S_i` sampled segments go through the backbone :math:`F` (the
    :obj:`encoder`) with gradients; the graph embedding aggregates all
    segment embeddings, and the head :math:`F'` predicts from it. Where the
    other segments' embeddings come from is the variant:

    * :obj:`"full"`: no segments; the encoder sees the whole graph.
    * :obj:`"gst"`: the other segments go through :math:`F` without
      gradients (exact but as slow as a full forward pass). They run in the
      module's mode: in training, an encoder with batch normalization
      normalizes them by their own batch statistics and updates its running
      statistics with them as well.
    * :obj:`"gst-one"`: the sampled segments only.
    * :obj:`"gst-e"`: from the segment table
      (:class:`~torch_autoscale.history.SegmentHistory`), which every step
      updates with the fresh embeddings of its sampled segments.
    * :obj:`"+d"` (:obj:`"gst-ed"`, :obj:`"gst-efd"`): Stale Embedding Dropout
      in training: each stale segment is kept with probability :math:`p`
      (:obj:`keep_prob`, weight :math:`\eta = 1`) or dropped (not even read
      from the table), and the sampled ones are weighted
      :math:`\eta = p + (1 - p) J_i / S_i`, which keeps
      :math:`\mathbb{E}[\sum_j \eta_j h_j] = \sum_j h_j` for a fresh table.
    * :obj:`"+f"` (:obj:`"gst-ef"`, :obj:`"gst-efd"`): after training, call
      :meth:`finetune`: refresh the table with the final backbone, then train
      the head alone on the up-to-date embeddings.

    In evaluation, use a loader that samples all segments
    (:obj:`num_sampled=None`): every embedding is then fresh, whatever the
    variant. Tables start at zero; fill them with :meth:`refresh_table`
    before training.

    .. code-block:: python

        dataset = SegmentedDataset(MalNetTiny(root, transform=...), 500)
        model = GSTModel(SegmentEncoder(5, 64), torch.nn.Linear(64, 5),
                         num_segments=dataset.num_segments,
                         variant='gst-efd')
        loader = SegmentLoader(dataset, batch_size=16, shuffle=True,
                               **model.loader_options)
        model.refresh_table(SegmentLoader(dataset, 64, num_sampled=None))
        for batch in loader:
            loss = F.cross_entropy(model(batch), batch.y)
            ...
        model.finetune(SegmentLoader(dataset, 64, num_sampled=None,
                                     indices=train_idx), epochs=100)

    Args:
        encoder (torch.nn.Module): The backbone: a batch of graphs in, one
            embedding per graph out (*e.g.*,
            :class:`~torch_autoscale.segment.SegmentEncoder`).
        head (torch.nn.Module): The prediction head :math:`F'`.
        num_segments (torch.Tensor, optional): The number of segments of
            every graph of the dataset (:obj:`SegmentedDataset.num_segments`);
            required by the table variants. (default: :obj:`None`)
        variant (str, optional): One of :obj:`VARIANTS`.
            (default: :obj:`"gst-efd"`)
        keep_prob (float, optional): The keep probability :math:`p` of Stale
            Embedding Dropout. (default: :obj:`0.5`)
        aggr (str, optional): How segment embeddings are combined:
            :obj:`"mean"` or :obj:`"sum"`. (default: :obj:`"mean"`)
        num_sampled (int, optional): Sampled segments per graph and step.
            (default: :obj:`1`)
        channels (int, optional): The embedding width, if :obj:`encoder` has
            no :obj:`out_channels`. (default: :obj:`None`)
        table_device (torch.device or str, optional): Where the table lives
            (see :class:`~torch_autoscale.history.History`).
            (default: :obj:`None`, host memory)
        table_dtype (torch.dtype, optional): The table's storage dtype.
            (default: :obj:`None`)
    """
    def __init__(self, encoder: torch.nn.Module, head: torch.nn.Module,
                 num_segments: Optional[Tensor] = None,
                 variant: str = 'gst-efd', keep_prob: float = 0.5,
                 aggr: str = 'mean', num_sampled: int = 1,
                 channels: Optional[int] = None,
                 table_device: Optional[Union[str, torch.device]] = None,
                 table_dtype: Optional[torch.dtype] = None):
        super().__init__()
        self.variant = variant
        self.spec = Variant.parse(variant)
        if not (isinstance(keep_prob, (int, float))
                and 0.0 <= keep_prob <= 1.0):
            raise ValueError(f"'keep_prob' must lie in [0, 1] (got "
                             f"{keep_prob!r}); the paper uses 0.5")
        if aggr not in ('mean', 'sum'):
            raise ValueError(f"'aggr' must be 'mean' or 'sum' (got {aggr!r})")
        if not isinstance(num_sampled, int) or num_sampled < 1:
            raise ValueError(f"'num_sampled' must be a positive integer (got "
                             f"{num_sampled!r})")
        self.encoder = encoder
        self.head = head
        self.keep_prob = float(keep_prob)
        self.aggr = aggr
        self.num_sampled = num_sampled
        self.table: Optional[SegmentHistory] = None
        if self.spec.mode == 'table':
            if num_segments is None:
                raise ValueError(f"variant {variant!r} keeps a segment "
                                 f"table: pass 'num_segments' (the "
                                 f"SegmentedDataset's 'num_segments')")
            channels = channels or getattr(encoder, 'out_channels', None)
            if channels is None:
                raise ValueError("pass 'channels', the encoder's output "
                                 "width (the encoder has no 'out_channels')")
            self.table = SegmentHistory(num_segments, int(channels),
                                        device=table_device,
                                        dtype=table_dtype)

    @property
    def loader_options(self) -> Dict[str, object]:
        r"""The :class:`~torch_autoscale.segment.SegmentLoader` arguments
        that training with this variant needs."""
        return dict(num_sampled=self.num_sampled,
                    others=self.spec.mode == 'gst',
                    whole=self.spec.mode == 'full')

    def reset_parameters(self):
        for module in (self.encoder, self.head):
            if hasattr(module, 'reset_parameters'):
                module.reset_parameters()
        if self.table is not None:
            self.table.reset_parameters()

    def _device(self) -> torch.device:
        param = next(self.parameters(), None)
        return param.device if param is not None else torch.device('cpu')

    def _check_table(self) -> SegmentHistory:
        if self.table is None:
            raise ValueError(f"variant {self.variant!r} keeps no segment "
                             f"table; use 'gst-e', 'gst-ef', 'gst-ed' or "
                             f"'gst-efd'")
        return self.table

    def _combine(self, total: Tensor, denom: Tensor) -> Tensor:
        if self.aggr == 'mean':
            return total / denom.clamp(min=1).to(total.dtype).view(-1, 1)
        return total

    def embed(self, batch: SegmentBatch) -> Tensor:
        r"""The graph embeddings of a mini-batch (before the head), shape
        :obj:`[batch_size, channels]`. With a table, the sampled segments'
        fresh embeddings are pushed to it (in evaluation too, which
        refreshes the rows of every segment evaluated)."""
        num_graphs = batch.batch_size
        if self.spec.mode == 'full':
            if batch.whole is None:
                raise ValueError("variant 'full' needs whole graphs: build "
                                 "the loader with 'whole=True' (see "
                                 "'loader_options')")
            return self.encoder(batch.whole)

        sampled, others = batch.sampled, batch.others
        h = self.encoder(sampled.data)
        J = batch.num_segments.to(h.device)
        weight = None
        sed = self.training and self.spec.sed
        if sed:
            S = torch.bincount(sampled.graph, minlength=num_graphs).to(
                h.device)
            p = self.keep_prob
            eta = p + (1 - p) * J.to(h.dtype) / S.clamp(min=1).to(h.dtype)
            weight = eta[sampled.graph.to(h.device)].view(-1, 1)
        total = scatter(h if weight is None else h * weight,
                        sampled.graph.to(h.device), dim=0,
                        dim_size=num_graphs, reduce='sum')

        if self.spec.mode == 'one':
            count = torch.bincount(sampled.graph, minlength=num_graphs)
            return self._combine(total, count.to(h.device))

        if others.graph.numel() > 0:
            if self.spec.mode == 'gst':
                if others.data is None:
                    raise ValueError("variant 'gst' runs the other segments "
                                     "through the encoder: build the loader "
                                     "with 'others=True' (see "
                                     "'loader_options')")
                with torch.no_grad():
                    stale = self.encoder(others.data)
                index = others.graph
            else:  # The segment table.
                index, segment = others.graph, others.segment
                if sed:  # Dropped segments are not even read.
                    keep = torch.rand(index.numel()) < self.keep_prob
                    index, segment = index[keep], segment[keep]
                graph = batch.graph_id.cpu()[index.cpu()]
                stale = self.table.pull(graph, segment.cpu())
            total = total + scatter(stale.to(total.dtype),
                                    index.to(h.device), dim=0,
                                    dim_size=num_graphs, reduce='sum')
        if self.table is not None:
            self.table.push(h.detach(),
                            batch.graph_id.cpu()[sampled.graph.cpu()],
                            sampled.segment.cpu())
        return self._combine(total, J)

    def forward(self, batch: SegmentBatch) -> Tensor:
        r"""Predictions for the graphs of :obj:`batch`."""
        return self.head(self.embed(batch))

    @torch.no_grad()
    def refresh_table(self, loader, progress: bool = True) -> None:
        r"""Writes every segment of the loader's graphs into the table with
        the current encoder (in evaluation mode, without gradients).

        Args:
            loader (SegmentLoader): Batches that sample all segments
                (:obj:`num_sampled=None`).
            progress (bool, optional): Whether to show a progress bar.
                (default: :obj:`True`)
        """
        table = self._check_table()
        was_training = self.training
        self.eval()
        device = self._device()
        for batch in tqdm(loader, desc='Refreshing segment table',
                          disable=not progress, leave=False):
            if batch.others.graph.numel() > 0:
                raise ValueError("'loader' must sample all segments: build "
                                 "it with 'num_sampled=None'")
            sampled = batch.sampled
            h = self.encoder(sampled.data.to(device))
            table.push(h, batch.graph_id[sampled.graph], sampled.segment)
            del h
        self.train(was_training)

    def _table_embedding(self, graph_id: Tensor) -> Tensor:
        rows, index = self.table.pull_graphs(graph_id)
        total = scatter(rows, index.to(rows.device), dim=0,
                        dim_size=graph_id.numel(), reduce='sum')
        return self._combine(total,
                             self.table.num_segments[graph_id].to(
                                 rows.device))

    def finetune(self, loader, epochs: int, lr: float = 0.01,
                 weight_decay: float = 0.0, batch_size: int = 64,
                 loss_fn: Optional[Callable[[Tensor, Tensor], Tensor]] = None,
                 scheduler: str = 'cosine',
                 progress: bool = True) -> List[float]:
        r"""Prediction-head finetuning (+F): refreshes the table rows of the
        loader's graphs with the final encoder, then trains only the head on
        these up-to-date embeddings; the encoder is not touched.

        Args:
            loader (SegmentLoader): The training graphs, all segments sampled
                (:obj:`num_sampled=None`).
            epochs (int): The number of finetuning epochs.
            lr (float, optional): Adam's learning rate. (default: :obj:`0.01`)
            weight_decay (float, optional): Adam's weight decay.
                (default: :obj:`0.0`)
            batch_size (int, optional): Graphs per step.
                (default: :obj:`64`)
            loss_fn (callable, optional): The loss of predictions and labels.
                (default: :obj:`None`, cross-entropy)
            scheduler (str, optional): The learning rate over the epochs:
                :obj:`"cosine"` (cosine annealing to zero, the default
                schedule of the paper's GraphGym-based code) or
                :obj:`"constant"`. (default: :obj:`"cosine"`)
            progress (bool, optional): Whether to show progress bars.
                (default: :obj:`True`)

        Returns:
            The mean loss of every epoch.
        """
        table = self._check_table()
        if not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f"'epochs' must be a non-negative integer (got "
                             f"{epochs!r})")
        if scheduler not in ('cosine', 'constant'):
            raise ValueError(f"'scheduler' must be 'cosine' or 'constant' "
                             f"(got {scheduler!r})")
        loss_fn = loss_fn or F.cross_entropy
        self.refresh_table(loader, progress=progress)
        ids, ys = [], []
        for batch in loader:  # Cheap: ids and labels only are kept.
            ids.append(batch.graph_id)
            ys.append(batch.y)
        graph_id, y = torch.cat(ids), torch.cat(ys).to(table.device)
        optimizer = torch.optim.Adam(self.head.parameters(), lr=lr,
                                     weight_decay=weight_decay)
        schedule = (torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(epochs, 1))
                    if scheduler == 'cosine' else None)
        self.eval()
        self.head.train()
        losses = []
        for _ in tqdm(range(epochs), desc='Finetuning head',
                      disable=not progress, leave=False):
            total = 0.0
            perm = torch.randperm(graph_id.numel())
            for chunk in perm.split(batch_size):
                emb = self._table_embedding(graph_id[chunk])
                optimizer.zero_grad()
                loss = loss_fn(self.head(emb), y[chunk])
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * chunk.numel()
            losses.append(total / max(graph_id.numel(), 1))
            if schedule is not None:
                schedule.step()
        return losses

    @torch.no_grad()
    def predict(self, loader, progress: bool = True) -> Tuple[Tensor, Tensor]:
        r"""Predictions with fresh embeddings of every segment.

        Args:
            loader (SegmentLoader): Batches that sample all segments
                (:obj:`num_sampled=None`; for :obj:`"full"`,
                :obj:`whole=True`).
            progress (bool, optional): Whether to show a progress bar.
                (default: :obj:`True`)

        Returns:
            The graph ids and the predictions, in the loader's order.
        """
        was_training = self.training
        self.eval()
        ids, outs = [], []
        for batch in tqdm(loader, desc='Predicting', disable=not progress,
                          leave=False):
            if self.spec.mode != 'full' and batch.others.graph.numel() > 0:
                raise ValueError("'loader' must sample all segments: build "
                                 "it with 'num_sampled=None'")
            ids.append(batch.graph_id)
            outs.append(self(batch.to(self._device())))
        self.train(was_training)
        return torch.cat(ids), torch.cat(outs)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(variant={self.variant!r}, '
                f'aggr={self.aggr!r}, keep_prob={self.keep_prob}, '
                f'encoder={self.encoder.__class__.__name__})')
