-- wrk: every request asks for another item (keys 0..49999, in order per connection)
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/item/" .. (counter % 50000))
end
