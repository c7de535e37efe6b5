timezone = "Europe/Paris"
