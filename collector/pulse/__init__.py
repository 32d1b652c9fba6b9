"""TracePulse: incident reports triggered by events, guided by a system map and recent
code changes, delivered to Slack and e-mail, refined by people's feedback.

``trigger`` finds triggers in stored records and spans, ``sysmap`` merges the declared
map with the observed service graph, ``ranking`` weighs hypotheses by explainable
rules, ``reports`` keeps reports and feedback on disk, ``engine`` runs it all."""

from collector.pulse.engine import Notifier, Pulse
from collector.pulse.reports import ReportBook, markdown
from collector.pulse.sysmap import SystemMap
from collector.pulse.trigger import PRIORITIES, Trigger

__all__ = ["PRIORITIES", "Notifier", "Pulse", "ReportBook", "SystemMap", "Trigger", "markdown"]
