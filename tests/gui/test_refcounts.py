"""The installed PySide6 must not leak references to None/True/False.

PySide6 6.12.0 wheels assume Python 3.12's immortal singletons: on 3.11 every Qt call
returning None or a bool drops a reference, and the process aborts ("none_dealloc")
after ~5,000 calls, i.e. within one brush drag. pyproject.toml excludes those builds;
this test fails if an environment gets one anyway (docs/decisions/0003).
"""

import subprocess
import sys

CODE = """
from PySide6.QtCore import QObject, QPointF, Signal
from PySide6.QtWidgets import QApplication, QWidget
app = QApplication([])
w = QWidget()
class O(QObject):
    s = Signal(object)
o = O()
o.s.connect(lambda v: None)
pt = QPointF(1, 2)
for _ in range(50_000):   # far more than the ~5,000 references None starts with
    pt.setX(3)            # returns None
    w.update()            # returns None
    o.s.emit(1)           # returns True
print("survived")
"""


def test_many_void_and_bool_qt_calls_do_not_abort():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120,
                         env={"QT_QPA_PLATFORM": "offscreen", "PATH": ""})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "survived"
