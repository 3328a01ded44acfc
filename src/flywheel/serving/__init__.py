"""The production model server: FastAPI + uvicorn + ONNX Runtime, hot-swapping from the registry.

Entry points: :func:`flywheel.serving.app.create_app` (an ASGI app for tests and embedding)
and :func:`flywheel.serving.server.run_server` (``flywheel serve``). Nothing is imported
here, so importing the package starts nothing and pulls in no web stack.
"""
