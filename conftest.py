"""Settings every test shares, including the notebook kernels nbval starts (they inherit them).

- the smoke profile: seconds per notebook;
- offline data: no test touches the network, and notebooks take their offline stand-ins;
- strict checks: a lab solution whose answer fails its check fails the test.
"""

import os
import tempfile

os.environ.setdefault("COURSE_PROFILE", "smoke")
os.environ.setdefault("COURSE_OFFLINE", "1")
os.environ.setdefault("COURSE_CHECKS_STRICT", "1")
# An empty data cache of the test run's own, so a learner's downloads don't change what is tested.
os.environ.setdefault("COURSE_DATA_DIR", tempfile.mkdtemp(prefix="course-test-data-"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

# The lessons' exercise solutions run in one shared kernel in tests/test_labs.py
# (test_lesson_exercise_solutions_pass_their_checks), not one kernel each under nbval.
collect_ignore_glob = ["labs/solutions/lesson*.ipynb"]
