-- Argo CD health of a shoal.dev Collection: Healthy when in sync with its spec, Progressing
-- while it is created or migrated, Degraded on drift or errors (the status says which).
local phase = obj.status and obj.status.phase or nil
if phase == nil then
  return {status = "Progressing", message = "waiting for the operator"}
end
local generation = obj.metadata.generation
if obj.status.observedGeneration ~= nil and generation ~= nil and obj.status.observedGeneration < generation then
  return {status = "Progressing", message = "the operator has not seen this generation yet"}
end
if phase == "Ready" then
  return {status = "Healthy", message = "in sync with its spec"}
end
if phase == "Drifted" or phase == "Error" then
  local why = {}
  for _, line in ipairs(obj.status.errors or {}) do table.insert(why, line) end
  for _, line in ipairs(obj.status.drift or {}) do table.insert(why, line) end
  return {status = "Degraded", message = table.concat(why, "; ")}
end
return {status = "Progressing", message = phase}
