os.execute("touch /tmp/tether-health-lua-escaped")
return {status = "Healthy"}
