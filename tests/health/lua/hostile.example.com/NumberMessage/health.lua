return {status = "Healthy", message = 42}
