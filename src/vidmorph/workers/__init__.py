"""Workers: what runs tasks. Each receives a task id and ends in service.execute.run_task."""
