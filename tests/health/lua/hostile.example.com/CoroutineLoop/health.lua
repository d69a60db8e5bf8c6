local spin = coroutine.wrap(function() while true do end end)
spin()
