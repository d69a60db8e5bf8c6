return {status = "Fine", message = "not a health status"}
