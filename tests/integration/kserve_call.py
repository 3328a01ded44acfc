"""Run by ``test_oip_clients.py`` under an interpreter that has kserve (its pins conflict
with the project's): KServe's ``InferenceRESTClient`` against a running server.

argv: base URL, model name, JSON list of [name, datatype, flat data, shape]. Prints one
JSON line: live, ready, the echoed id and each output's flat values.
"""

import asyncio
import json
import sys

import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

NUMPY = {"BYTES": object, "UINT8": np.uint8, "FP32": np.float32}


async def main(url: str, name: str, tensors: list[list]) -> None:
    client = InferenceRESTClient(RESTConfig(protocol="v2"))
    live = await client.is_server_live(url)
    ready = await client.is_model_ready(url, name)
    inputs = []
    for tensor_name, datatype, data, shape in tensors:
        tensor = InferInput(tensor_name, shape, datatype)
        values = [v.encode() for v in data] if datatype == "BYTES" else data
        tensor.set_data_from_numpy(np.array(values, dtype=NUMPY[datatype]).reshape(shape))
        inputs.append(tensor)
    request = InferRequest(model_name=name, infer_inputs=inputs, request_id="k-1")
    result = await client.infer(url, request, model_name=name)
    outputs = {
        o.name: [v.decode() if isinstance(v, bytes) else v for v in o.as_numpy().ravel().tolist()]
        for o in result.outputs
    }
    await client.close()
    print(json.dumps({"live": live, "ready": ready, "id": result.id, "outputs": outputs}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3])))
