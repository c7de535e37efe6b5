from conveyor import shared_task


@shared_task(name="sample.ping")
def ping() -> str:
    return "pong"
