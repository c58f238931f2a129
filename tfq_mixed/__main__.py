"""`python -m tfq_mixed`: the main job on the embedded default (`tfq_mixed/demo/main.py`)."""

from tfq_mixed.demo import main

if __name__ == "__main__":
  main.run()
