return {status = "Healthy", message = obj.status.missing.field}
