-- Argo CD health of a shoal.dev MilvusCluster: Healthy only when the operator reports the
-- cluster Ready for the current generation; Degraded when it says so; else Progressing.
local hs = {status = "Progressing", message = "waiting for the operator to report Ready"}
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local generation = obj.metadata.generation
for _, c in ipairs(obj.status.conditions) do
  local current = c.observedGeneration == nil or generation == nil or c.observedGeneration >= generation
  if c.type == "Degraded" and c.status == "True" and current then
    return {status = "Degraded", message = (c.reason or "") .. ": " .. (c.message or "")}
  end
end
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Ready" then
    local current = c.observedGeneration == nil or generation == nil or c.observedGeneration >= generation
    if c.status == "True" and current then
      return {status = "Healthy", message = c.message or "Ready"}
    end
    hs.message = c.message or c.reason or hs.message
  end
end
return hs
