"""The PySide6 wheel's reference leak on None/True/False is neutralised by workbench.gui."""

import subprocess
import sys

CODE = """
import sys
import workbench.gui
from PySide6.QtCore import QObject, QPointF, Signal
class O(QObject):
    s = Signal(object)
o = O()
o.s.connect(lambda v: None)
pt = QPointF(1, 2)
for _ in range(50_000):   # far more than the ~5,000 references None starts with
    pt.setX(3)            # returns None
    o.s.emit(1)           # returns True
print("survived")
"""


def test_many_void_and_bool_qt_calls_do_not_abort():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120,
                         env={"QT_QPA_PLATFORM": "offscreen", "PATH": ""})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "survived"
