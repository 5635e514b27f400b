// Queries shared by the page (preloaded by index.html, see build.mjs) and the script.

// Everything for the first render in one streamed request: every Location as GeoJSON
// with its Things, their Datastreams and each one's latest Observation (read from the
// per-Datastream summary the store keeps). Only what the map needs: names and
// definitions come with the detail panel.
export const SENSORS_QUERY =
  "Locations?$resultFormat=GeoJSON&$select=id,location" +
  "&$expand=Things($select=id,name,properties;$expand=Datastreams(" +
  "$select=id,unitOfMeasurement;$expand=ObservedProperty($select=name)," +
  "Observations($top=1;$orderby=phenomenonTime desc;$select=result,phenomenonTime)))";
