r"""Installs torch_autoscale as a dependency would be, and checks the result.

1. builds the sdist of this checkout (``python -m build --sdist``);
2. creates a fresh virtualenv and installs torch into it (the user's torch);
3. ``pip install -v <sdist>`` into it, with no other option, timed;
4. checks pip's log (the isolated build environment's installs included)
   names no torch and no nvidia-* CUDA wheel, and that the venv's torch is
   the same afterwards;
5. in that venv, from a folder outside the checkout: ``_C`` is loaded and
   reports the torch it was compiled against, which is the venv's, and a tiny
   GAS training (the README's quickstart model on a 2,000-node synthetic
   graph) runs with the native ops active and learns.

``make check-install`` runs it (and ``.ci/run``); it takes a few minutes,
most of them compiling ``_C``. ``--torch`` names the torch to preinstall
(default: this interpreter's release), ``--work`` the scratch folder.
Exits non-zero on the first failed check.
"""
import argparse
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

TRAIN = r'''
import json, time
import torch
from torch.nn import ModuleList
from torch_geometric.nn import SAGEConv

import torch_autoscale
from torch_autoscale import typing
from torch_autoscale.loader import PartitionedData
from torch_autoscale.nn import ScalableGNN
from torch_autoscale.utils import homophilous_sbm


class SAGE(ScalableGNN):
    def __init__(self, num_nodes, in_channels, hidden_channels, out_channels,
                 num_layers=2):
        super().__init__(num_nodes, hidden_channels, num_layers)
        dims = [in_channels] + [hidden_channels] * (num_layers - 1)
        self.convs = ModuleList([SAGEConv(d, hidden_channels)
                                 for d in dims[:-1]])
        self.convs.append(SAGEConv(dims[-1], out_channels))

    def forward(self, x, adj_t, batch=None):
        for conv, history in zip(self.convs[:-1], self.histories):
            x = conv((x, x[:adj_t.size(0)]), adj_t).relu()
            x = self.push_and_pull(history, x, batch)
        return self.convs[-1]((x, x[:adj_t.size(0)]), adj_t)

    def forward_layer(self, layer, x, adj_t, state):
        h = self.convs[layer]((x, x[:adj_t.size(0)]), adj_t)
        return h.relu() if layer < self.num_layers - 1 else h


assert typing.WITH_NATIVE, 'torch_autoscale._C is not loaded'
torch.manual_seed(0)
t = time.perf_counter()
data = homophilous_sbm(num_nodes=2_000)
pdata = PartitionedData(data, num_parts=8)
loader = pdata.loader(batch_size=2, shuffle=True)
model = SAGE(data.num_nodes, data.num_features, 32, int(data.y.max()) + 1)
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
profile = torch.profiler.profile(activities=[
    torch.profiler.ProfilerActivity.CPU])
for epoch in range(10):
    if epoch == 9:  # which ops the last epoch runs
        profile.start()
    for batch in loader:
        optimizer.zero_grad()
        out = model(batch.data.x, batch.data.adj_t, batch)
        mask = batch.data.train_mask[:batch.batch_size]
        loss = torch.nn.functional.cross_entropy(
            out[mask], batch.data.y[:batch.batch_size][mask])
        loss.backward()
        optimizer.step()
profile.stop()
native_ops = sorted({e.key for e in profile.key_averages()
                     if e.key.startswith('torch_autoscale::')})
out = model.mini_inference(pdata.eval_loader(batch_size=2))
test_mask = pdata.data.test_mask
acc = (out.argmax(-1) == pdata.data.y)[test_mask].float().mean().item()
print(json.dumps({
    'torch': torch.__version__,
    'native': typing.WITH_NATIVE,
    'native_ops': native_ops,
    'native_torch_version': typing.NATIVE_TORCH_VERSION,
    'op_torch_version': torch.ops.torch_autoscale.torch_version(),
    'module': torch_autoscale.__file__,
    'test_acc': acc,
    'seconds': time.perf_counter() - t,
}))
'''


def step(title, command, log=None, **kwargs):
    shown = ' '.join(a if '\n' not in a else '<script>' for a in command)
    print(f'check_install: {title}: {shown}', flush=True)
    t = time.perf_counter()
    out = subprocess.run(command, text=True, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, **kwargs)
    seconds = time.perf_counter() - t
    if log is not None:
        with open(log, 'w') as f:
            f.write(out.stdout)
    if out.returncode != 0:
        print(out.stdout[-6000:], file=sys.stderr)
        raise SystemExit(f'check_install: {title} failed '
                         f'(exit {out.returncode})')
    print(f'check_install: {title}: {seconds:.0f} s', flush=True)
    return out.stdout, seconds


def fetched(log):
    r"""The distributions pip's log says it collected, downloaded, used from
    its cache or installed, the build environment's included."""
    names = set()
    for m in re.finditer(
            r'^\s*(?:Collecting|Downloading|Using cached|Processing)\s+'
            r'(?:\S*/)?([A-Za-z0-9_.\-]+)', log, re.M):
        names.add(re.split(r'[<>=!~;\[ ]|-\d', m.group(1))[0].lower()
                  .replace('_', '-'))
    for m in re.finditer(r'Successfully installed (.*)$', log, re.M):
        names.update(
            re.sub(r'-[0-9][^-]*$', '', n).lower().replace('_', '-')
            for n in m.group(1).split())
    return names


def pip_list(python):
    out = subprocess.run([python, '-m', 'pip', 'list', '--format=json'],
                         capture_output=True, text=True, check=True)
    return {p['name'].lower(): p['version'] for p in json.loads(out.stdout)}


def main(argv=None):
    import torch
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--torch', default='torch==' +
                        torch.__version__.split('+')[0])
    parser.add_argument('--work', default=osp.join(ROOT, 'build',
                                                   'check-install'))
    parser.add_argument('--python', default=sys.executable,
                        help='interpreter the fresh venv is made from')
    args = parser.parse_args(argv)

    work = osp.abspath(args.work)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    dist, venv = osp.join(work, 'dist'), osp.join(work, 'venv')
    python = osp.join(venv, 'bin', 'python')

    step('sdist', [sys.executable, '-m', 'build', '--sdist', '--no-isolation',
                   '--outdir', dist, ROOT], log=osp.join(work, 'sdist.log'))
    (sdist, ) = [osp.join(dist, f) for f in os.listdir(dist)]
    step('fresh venv', [args.python, '-m', 'venv', venv])
    _, torch_s = step('preinstall torch', [
        python, '-m', 'pip', 'install', '--no-compile', '--quiet', args.torch
    ])
    before = pip_list(python)

    # The dependency install under test: plain pip, as a user runs it.
    # REQUIRE_NATIVE makes a build that found no torch fail instead of
    # quietly leaving out _C.
    env = dict(os.environ, TORCH_AUTOSCALE_REQUIRE_NATIVE='1')
    # install.log: what pip printed; pip.log: the same with time stamps.
    log, install_s = step('pip install <sdist>', [
        python, '-m', 'pip', 'install', '-v', '--log',
        osp.join(work, 'pip.log'), sdist
    ], log=osp.join(work, 'install.log'), env=env)
    after = pip_list(python)
    names = fetched(log)
    bad = sorted(n for n in names if n == 'torch' or n.startswith('nvidia'))
    if bad:
        raise SystemExit(f'check_install: pip fetched {bad} (see '
                         f'{work}/install.log)')
    if after.get('torch') != before.get('torch'):
        raise SystemExit(f'check_install: torch changed from '
                         f'{before.get("torch")} to {after.get("torch")}')
    extra = sorted(n for n in after if n.startswith('nvidia'))
    if extra:
        raise SystemExit(f'check_install: CUDA wheels installed: {extra}')
    build_env = re.findall(r'^\s+Successfully installed (.*)$', log, re.M)
    compiled = re.findall(r'^\s+\[\d+/\d+\] (c\+\+|nvcc)', log, re.M)

    out, train_s = step('tiny training', [python, '-c', TRAIN], cwd=work)
    result = json.loads(re.findall(r'^\{"torch".*\}$', out, re.M)[-1])
    if not result['module'].startswith(venv):
        raise SystemExit(f'check_install: imported {result["module"]}, '
                         f'not the installed copy')
    if result['native_torch_version'] != after['torch'].split('+')[0]:
        raise SystemExit(f'check_install: _C reports torch '
                         f'{result["native_torch_version"]}, the venv has '
                         f'{after["torch"]}')
    if not result['native_ops']:
        raise SystemExit('check_install: the training ran no native op')
    if result['test_acc'] < 0.5:
        raise SystemExit(f'check_install: test accuracy '
                         f'{result["test_acc"]:.3f}, expected >= 0.5')

    wheel = re.search(r'Created wheel for torch_autoscale: filename=(\S+) '
                      r'size=(\d+)', log)
    print('check_install: OK')
    print(f'  torch preinstalled: {after["torch"]} ({torch_s:.0f} s)')
    print(f'  pip install <sdist>: {install_s:.0f} s, no torch or nvidia-* '
          f'fetched; build environment: '
          f'{"; ".join(s.strip() for s in build_env) or "-"}; '
          f'{len(compiled)} ninja steps')
    if wheel:
        print(f'  wheel: {wheel.group(1)} ({int(wheel.group(2)) / 1e6:.1f} '
              f'MB)')
    print(f'  _C reports torch {result["op_torch_version"]}; tiny GAS '
          f'training with native ops ({", ".join(result["native_ops"])}): '
          f'test accuracy '
          f'{result["test_acc"]:.3f} ({train_s:.0f} s)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
