return {message = "forgot the status"}
