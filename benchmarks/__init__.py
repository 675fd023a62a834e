"""``python -m benchmarks``: speed, memory and accuracy of every way this project scores a review.

A development tool, not one of the installed packages: it imports TensorFlow for the Keras
baseline row (the runtime rows never do). See ``__main__.py`` for the options.
"""
