"""The bundled demo (installed as ``orchestration._demo`` so ``job-orchestration demo`` finds
it from any install)."""
