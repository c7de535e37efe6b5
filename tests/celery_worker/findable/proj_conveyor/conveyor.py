from conveyor import Conveyor

application = Conveyor("proj_conveyor", broker="memory://find-cv", backend="memory://find-cv")
