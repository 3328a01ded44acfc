"""Which dataset a registry on the team remote belongs to.

Each params file (dataset) has a registry and a production alias of its own; on the
remote they live under ``remote.url``. Two params files naming the same ``remote.url``
would otherwise share one alias, each promotion replacing the other dataset's model. The
first deploy claims the registry for its dataset (one create-only object); a deploy of
another dataset is refused with the fix, before anything is registered.
"""

from __future__ import annotations

import json

from flywheel.core.errors import RegistryError
from flywheel.remote.objects import ObjectStore, PreconditionFailed


def claim(store: ObjectStore, dataset: str) -> None:
    """Claim the remote registry for ``dataset``, or raise if another dataset holds it."""
    key = store.key("registry", "dataset.json")
    body = json.dumps({"dataset": dataset}).encode()
    try:
        store.put(key, body, "claiming the remote registry", create_only=True)
        return
    except PreconditionFailed:
        pass  # claimed already: by this dataset, or another
    blob = store.get(key, "reading whose remote registry this is")
    try:
        owner = json.loads(blob.body)["dataset"] if blob else dataset
    except (ValueError, KeyError, TypeError):
        owner = None
    if owner != dataset:
        raise RegistryError(
            f"the registry at {store.uri(key).rsplit('/', 1)[0]} belongs to dataset "
            f"{owner!r}, not {dataset!r}: give this params file a remote.url of its own "
            f"(e.g. {store.url}-{dataset.replace('/', '-')})"
        )
