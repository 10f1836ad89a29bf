"""Demo experiment: fit y = w*x + b by gradient descent, in plain Python.

Three steps, as a real training pipeline has them: make the data, train (with progress and a
model file), evaluate on held-out data (returning metrics for `job-orchestration results`).
"""
import json
import random

from orchestration import TaskBase


class Prepare(TaskBase):
    """Write a noisy sample of y = 3x + 2, split into train and test."""

    def run(self):
        rng = random.Random(self.config.get("seed", 0))
        points = [(x, 3 * x + 2 + rng.gauss(0, self.config.get("noise", 0.1)))
                  for x in (rng.uniform(-1, 1) for _ in range(self.config.get("samples", 200)))]
        split = int(len(points) * 0.8)
        (self.output_dir / "data.json").write_text(
            json.dumps({"train": points[:split], "test": points[split:]}))
        self.log.info("wrote %d points", len(points))
        return {"samples": len(points)}


class Train(TaskBase):
    """Gradient descent on mean squared error; saves model.json."""

    def validate(self):
        problems = []
        if not 0 < self.config.get("lr", 0) < 2:
            problems.append(f"lr must be between 0 and 2, got {self.config.get('lr')!r}")
        if int(self.config.get("epochs", 0)) < 1:
            problems.append("epochs must be at least 1")
        return problems

    def run(self):
        data = json.loads((self.output_dir / "data.json").read_text())["train"]
        w = b = 0.0
        lr, epochs = self.config["lr"], int(self.config["epochs"])
        for epoch in range(epochs):
            gw = sum(2 * (w * x + b - y) * x for x, y in data) / len(data)
            gb = sum(2 * (w * x + b - y) for x, y in data) / len(data)
            w, b = w - lr * gw, b - lr * gb
            if (epoch + 1) % max(1, epochs // 10) == 0:
                self.progress((epoch + 1) / epochs, f"epoch {epoch + 1}/{epochs}")
        (self.output_dir / "model.json").write_text(json.dumps({"w": w, "b": b}))
        print(f"trained: w={w:.4f} b={b:.4f}")
        return {"w": round(w, 4), "b": round(b, 4)}


class Evaluate(TaskBase):
    """Mean squared error of the trained model on the held-out points."""

    def run(self):
        test = json.loads((self.output_dir / "data.json").read_text())["test"]
        model = json.loads((self.output_dir / "model.json").read_text())
        mse = sum((model["w"] * x + model["b"] - y) ** 2 for x, y in test) / len(test)
        (self.output_dir / "metrics.json").write_text(json.dumps({"mse": mse}))
        self.log.info("test mse %.5f", mse)
        return {"mse": round(mse, 5)}
