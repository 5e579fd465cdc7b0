import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Commands the tests run (kfab, kubectl) come from the project's venv.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
